using System.Text.RegularExpressions;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;

namespace DyDiT.Eval.Workers.Networks.Vae;

/// <summary>
/// Strict access to an <c>AutoencoderKL</c> state dict, as PyTorch's <c>load_state_dict</c> would check it: every key
/// the decoder asks for must exist with exactly the expected shape, and every <c>decoder.*</c> /
/// <c>post_quant_conv.*</c> key must be used (the encoder half, <c>encoder.*</c> and <c>quant_conv.*</c>, is present in
/// published files and ignored). Faults raise <see cref="TensorFileException"/> naming the file, the key and the shapes.
///
/// Attention keys are accepted in both layouts: current diffusers (<c>to_q, to_k, to_v, to_out.0</c>) and the older one
/// (<c>query, key, value, proj_attn</c>) of older uploads (reportedly including sd-vae-ft-ema/-mse); old names are renamed to the
/// current ones on load, as diffusers does.
/// </summary>
internal sealed partial class VaeWeights
{
    private static readonly string[] IgnoredPrefixes = ["encoder.", "quant_conv."];

    // current key → (name in the file, tensor)
    private readonly Dictionary<string, (string FileKey, StoredTensor Tensor)> _tensors = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public VaeWeights(IEnumerable<KeyValuePair<string, StoredTensor>> stateDict, string source)
    {
        Source = source;
        foreach (var (fileKey, tensor) in stateDict)
        {
            string key = CurrentName(fileKey);
            if (!_tensors.TryAdd(key, (fileKey, tensor)))
                throw new TensorFileException(source, $"state dict holds both '{_tensors[key].FileKey}' and '{fileKey}' (the same attention weight in the old and the current layout)");
        }
    }

    /// <summary>The file the state dict came from, for messages.</summary>
    public string Source { get; }

    /// <summary>
    /// Opens <paramref name="weightsPath"/> (.safetensors, or a <c>torch.save</c> state dict such as diffusers'
    /// <c>diffusion_pytorch_model.bin</c>; recognised by content) and runs <paramref name="use"/> while it is open.
    /// </summary>
    public static T Open<T>(string weightsPath, Func<VaeWeights, T> use)
    {
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: file not found", weightsPath);
        using var file = TensorFile.Open(weightsPath);
        switch (file.Format)
        {
            case "safetensors":
                return use(new VaeWeights(file.Tensors.Select(t => KeyValuePair.Create(t.Name, t)), weightsPath));
            case "torch-zip" or "torch-legacy":
                // TorchCheckpoint finds the state dict inside nested checkpoints ('ema', 'model', 'state_dict').
                using (var checkpoint = TorchCheckpoint.Open(weightsPath))
                    return use(new VaeWeights(checkpoint.StateDict().Select(kv => KeyValuePair.Create(kv.Key, (StoredTensor)kv.Value)), weightsPath));
            default:
                throw new TensorFileException(weightsPath, $"a {file.Format} file is not a model checkpoint (expected .safetensors or a torch.save state dict)");
        }
    }

    /// <summary>The values of <paramref name="key"/> (current naming) as float32 in C order; its stored shape must equal <paramref name="shape"/>.</summary>
    public float[] Read(string key, params long[] shape)
    {
        if (!_tensors.TryGetValue(key, out var entry))
        {
            string legacy = LegacyName(key) is { } old ? $" or '{old}'" : "";
            throw new TensorFileException(Source, $"state dict has no key '{key}'{legacy} (expected shape {Format(shape)})");
        }
        var t = entry.Tensor;
        if (!t.Shape.SequenceEqual(shape))
            throw new TensorFileException(Source, $"state dict key '{entry.FileKey}' has shape {Format(t.Shape)}, expected {Format(shape)}");
        if (t.DType is not (DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64))
            throw new TensorFileException(Source, $"state dict key '{entry.FileKey}' holds {t.DType.NumpyName()}, expected a floating-point tensor");
        _used.Add(key);
        return t.ToFloat32();
    }

    /// <summary>Throws if a decoder-side key was never read.</summary>
    public void EnsureAllUsed()
    {
        var unused = _tensors.Where(kv => !_used.Contains(kv.Key) && !IgnoredPrefixes.Any(p => kv.Key.StartsWith(p, StringComparison.Ordinal)))
            .Select(kv => kv.Value).ToList();
        if (unused.Count == 0) return;
        var first = unused[0];
        throw new TensorFileException(Source, $"unexpected state dict key '{first.FileKey}' (shape {Format(first.Tensor.Shape)})" +
            (unused.Count > 1 ? $" and {unused.Count - 1} more unexpected keys" : ""));
    }

    [GeneratedRegex(@"^(?<block>.*\.attentions\.\d+\.)(?<name>query|key|value|proj_attn)\.(?<param>weight|bias)$")]
    private static partial Regex LegacyAttentionKey();

    [GeneratedRegex(@"^(?<block>.*\.attentions\.\d+\.)(?<name>to_q|to_k|to_v|to_out\.0)\.(?<param>weight|bias)$")]
    private static partial Regex CurrentAttentionKey();

    private static string CurrentName(string key)
    {
        var m = LegacyAttentionKey().Match(key);
        if (!m.Success) return key;
        string name = m.Groups["name"].Value switch { "query" => "to_q", "key" => "to_k", "value" => "to_v", _ => "to_out.0" };
        return $"{m.Groups["block"].Value}{name}.{m.Groups["param"].Value}";
    }

    private static string? LegacyName(string key)
    {
        var m = CurrentAttentionKey().Match(key);
        if (!m.Success) return null;
        string name = m.Groups["name"].Value switch { "to_q" => "query", "to_k" => "key", "to_v" => "value", _ => "proj_attn" };
        return $"{m.Groups["block"].Value}{name}.{m.Groups["param"].Value}";
    }

    private static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
