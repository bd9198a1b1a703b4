namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// Strict, PyTorch-<c>load_state_dict</c>-like access to a state dict: every tensor a model asks for must exist
/// with exactly the expected shape, and when loading is done every key must have been used
/// (<c>*.num_batches_tracked</c> counters excepted). Faults raise <see cref="TensorFileException"/> naming the
/// file, the key and the shapes.
/// </summary>
public sealed class StateDictReader
{
    private readonly IReadOnlyDictionary<string, StoredTensor> _tensors;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public StateDictReader(IReadOnlyDictionary<string, StoredTensor> tensors, string source)
    {
        _tensors = tensors;
        Source = source;
    }

    /// <summary>
    /// Opens a <c>torch.save</c> file (zip or legacy; a training checkpoint gives its <c>ema</c>, else <c>model</c>),
    /// hands its state dict to <paramref name="build"/> while the file is open, and closes it.
    /// </summary>
    public static T FromCheckpoint<T>(string path, Func<IReadOnlyDictionary<string, StoredTensor>, T> build)
    {
        using var checkpoint = Torch.TorchCheckpoint.Open(path);
        return build(checkpoint.StateDict().ToDictionary(kv => kv.Key, kv => (StoredTensor)kv.Value, StringComparer.Ordinal));
    }

    /// <summary>The file (or description) the state dict came from, for messages.</summary>
    public string Source { get; }

    /// <summary>Whether the state dict has <paramref name="key"/> (for parameters a model can also compute itself).</summary>
    public bool Contains(string key) => _tensors.ContainsKey(key);

    /// <summary>The values of <paramref name="key"/> as float32 in C order; the stored shape must equal <paramref name="shape"/>.</summary>
    public float[] Read(string key, params long[] shape)
    {
        if (!_tensors.TryGetValue(key, out var t))
            throw new TensorFileException(Source, $"state dict has no key '{key}' (expected shape {Format(shape)})");
        if (!t.Shape.SequenceEqual(shape))
            throw new TensorFileException(Source, $"state dict key '{key}' has shape {Format(t.Shape)}, expected {Format(shape)}");
        if (t.DType is not (DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64))
            throw new TensorFileException(Source, $"state dict key '{key}' holds {t.DType.NumpyName()}, expected a floating-point tensor");
        _used.Add(key);
        return t.ToFloat32();
    }

    /// <summary>The values of an integer tensor (a buffer such as an index table) as int64 in C order; shape checked as in <see cref="Read"/>.</summary>
    public long[] ReadInt64(string key, params long[] shape)
    {
        if (!_tensors.TryGetValue(key, out var t))
            throw new TensorFileException(Source, $"state dict has no key '{key}' (expected shape {Format(shape)})");
        if (!t.Shape.SequenceEqual(shape))
            throw new TensorFileException(Source, $"state dict key '{key}' has shape {Format(t.Shape)}, expected {Format(shape)}");
        var bytes = t.ReadAllBytes();
        long[] values = t.DType switch
        {
            DType.Int64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            DType.Int32 => Array.ConvertAll(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray(), v => (long)v),
            _ => throw new TensorFileException(Source, $"state dict key '{key}' holds {t.DType.NumpyName()}, expected an integer tensor"),
        };
        _used.Add(key);
        return values;
    }

    /// <summary>Throws if a key was never read (BatchNorm's <c>num_batches_tracked</c> counters are allowed and ignored).</summary>
    public void EnsureAllUsed()
    {
        foreach (var (key, t) in _tensors)
        {
            if (_used.Contains(key) || key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)) continue;
            int unused = _tensors.Keys.Count(k => !_used.Contains(k) && !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal));
            throw new TensorFileException(Source, $"unexpected state dict key '{key}' (shape {Format(t.Shape)})" +
                (unused > 1 ? $" and {unused - 1} more unexpected keys" : ""));
        }
    }

    private static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
