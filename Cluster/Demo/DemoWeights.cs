using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Safetensors;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Workers.Noise;

namespace DyDiT.Eval.Cluster.Demo;

/// <summary>
/// An ordered, in-memory state dict of float32 tensors: what a demo network is made of before it is written as a
/// torch checkpoint or safetensors file, and what the generator hands to our strict loaders while calibrating.
/// </summary>
internal sealed class DemoWeights
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (long[] Shape, float[] Values)> _tensors = new(StringComparer.Ordinal);

    public IReadOnlyList<string> Keys => _order;

    public int Count => _order.Count;

    public float[] this[string key] => _tensors[key].Values;

    public long[] Shape(string key) => _tensors[key].Shape;

    public void Add(string key, float[] values, params long[] shape)
    {
        long numel = shape.Aggregate(1L, (a, d) => a * d);
        if (numel != values.Length) throw new ArgumentException($"'{key}': shape [{string.Join(", ", shape)}] holds {numel} values, {values.Length} given");
        if (!_tensors.TryAdd(key, (shape, values))) throw new ArgumentException($"duplicate key '{key}'");
        _order.Add(key);
    }

    /// <summary>Replaces the values of an existing key (same element count).</summary>
    public void Set(string key, float[] values)
    {
        var (shape, old) = _tensors[key];
        if (old.Length != values.Length) throw new ArgumentException($"'{key}' holds {old.Length} values, {values.Length} given");
        _tensors[key] = (shape, values);
    }

    /// <summary>A copy whose value arrays are copies too, so the copy can be changed independently.</summary>
    public DemoWeights Clone()
    {
        var copy = new DemoWeights();
        foreach (var key in _order) copy.Add(key, (float[])_tensors[key].Values.Clone(), _tensors[key].Shape);
        return copy;
    }

    /// <summary>The state dict as our loaders take it (<c>Dit.FromStateDict</c> and friends).</summary>
    public IReadOnlyDictionary<string, StoredTensor> AsStateDict() =>
        _order.ToDictionary(k => k, k => (StoredTensor)new HostTensor(k, _tensors[k].Shape, _tensors[k].Values), StringComparer.Ordinal);

    public void SaveTorch(string path)
    {
        var writer = new TorchCheckpointWriter();
        foreach (var key in _order) writer.Add(key, _tensors[key].Values, _tensors[key].Shape);
        writer.Save(path);
    }

    public void SaveSafetensors(string path)
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        foreach (var key in _order) writer.Add(key, _tensors[key].Values, _tensors[key].Shape);
        writer.Save(path);
    }

    /// <summary>A float32 host array seen as a stored tensor.</summary>
    private sealed class HostTensor(string name, long[] shape, float[] values) : StoredTensor(name, shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination) => destination.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }
}

/// <summary>
/// The demo's random numbers: every tensor gets its own Philox stream of <see cref="PerSampleNoise"/> (keyed by a seed
/// derived from the user's seed and the asset, counter = the tensor's ordinal), so values do not depend on the
/// platform's libm, on threads or on which other tensors exist, and the same seed gives the same bits everywhere.
/// </summary>
internal sealed class DemoRandom
{
    private readonly PerSampleNoise _noise;
    private long _next;

    /// <param name="seed">The user's seed.</param>
    /// <param name="asset">Which asset draws (each gets an independent generator).</param>
    public DemoRandom(long seed, string asset)
    {
        ulong key = (ulong)seed;
        foreach (char c in asset) key = Mix(key ^ c);
        _noise = new PerSampleNoise(Mix(key));
    }

    /// <summary><paramref name="count"/> values N(mean, std²), from the next stream.</summary>
    public float[] Normal(long count, double std, double mean = 0)
    {
        var values = new float[count];
        _noise.Normals(_next++, PerSampleNoise.Stream.InitialLatent, 0, values);
        if (std != 1 || mean != 0)
            for (int i = 0; i < values.Length; i++) values[i] = (float)(mean + std * values[i]);
        return values;
    }

    /// <summary><paramref name="count"/> labels uniform in [0, <paramref name="classes"/>), from the next stream.</summary>
    public long[] Labels(int count, int classes)
    {
        long stream = _next++;
        var labels = new long[count];
        for (int i = 0; i < count; i++) labels[i] = _noise.Label(checked(stream * 1_000_000_000L + i), classes);
        return labels;
    }

    // SplitMix64's finaliser: a bijective scramble, so nearby seeds give unrelated keys
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
