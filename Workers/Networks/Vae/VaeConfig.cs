using System.Text.Json;
using DyDiT.Eval.Engine.Formats;

namespace DyDiT.Eval.Workers.Networks.Vae;

/// <summary>
/// The decoder-relevant fields of a diffusers <c>AutoencoderKL</c> <c>config.json</c>. Missing fields take diffusers'
/// constructor defaults; fields the decode path does not use (encoder block types, sample size, …) are ignored.
/// sd-vae-ft-ema / -mse: latent 4, blocks [128, 256, 512, 512], 2 layers per block, 32 groups.
/// </summary>
public sealed record VaeConfig(
    int LatentChannels,
    int OutChannels,
    IReadOnlyList<int> BlockOutChannels,
    int LayersPerBlock,
    int NormNumGroups,
    bool UsePostQuantConv,
    bool MidBlockAddAttention,
    double ScalingFactor)
{
    /// <summary>Output pixels per latent position along each axis: one 2× upsampling per up block but the last.</summary>
    public int UpsampleFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>Reads <paramref name="path"/>; a malformed or unsupported config raises <see cref="TensorFileException"/> naming the file and field.</summary>
    public static VaeConfig Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config JSON; <paramref name="source"/> names it in error messages.</summary>
    public static VaeConfig Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new TensorFileException(source, $"not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TensorFileException(source, "config is not a JSON object");
            var reader = new Fields(root, source);

            string? className = reader.String("_class_name", null);
            if (className is not null && className != "AutoencoderKL")
                throw new TensorFileException(source, $"_class_name is '{className}', expected 'AutoencoderKL'");
            string act = reader.String("act_fn", "silu")!;
            if (act != "silu") throw new TensorFileException(source, $"act_fn '{act}' is not supported (only 'silu')");

            var blocks = reader.IntList("block_out_channels", [64]);
            if (blocks.Count == 0) throw new TensorFileException(source, "block_out_channels is empty");
            var upTypes = reader.StringList("up_block_types", ["UpDecoderBlock2D"]);
            if (upTypes.Count != blocks.Count)
                throw new TensorFileException(source, $"{upTypes.Count} up_block_types for {blocks.Count} block_out_channels");
            foreach (var t in upTypes)
                if (t != "UpDecoderBlock2D") throw new TensorFileException(source, $"up block type '{t}' is not supported (only 'UpDecoderBlock2D')");

            var config = new VaeConfig(
                LatentChannels: reader.Int("latent_channels", 4),
                OutChannels: reader.Int("out_channels", 3),
                BlockOutChannels: blocks,
                LayersPerBlock: reader.Int("layers_per_block", 1),
                NormNumGroups: reader.Int("norm_num_groups", 32),
                UsePostQuantConv: reader.Bool("use_post_quant_conv", true),
                MidBlockAddAttention: reader.Bool("mid_block_add_attention", true),
                ScalingFactor: reader.Double("scaling_factor", 0.18215));
            foreach (var c in blocks)
                if (c % config.NormNumGroups != 0)
                    throw new TensorFileException(source, $"block_out_channels entry {c} is not a multiple of norm_num_groups {config.NormNumGroups}");
            return config;
        }
    }

    /// <summary>Typed access to optional fields with diffusers' defaults; wrong types are errors naming the field.</summary>
    private readonly struct Fields(JsonElement root, string source)
    {
        private bool TryGet(string name, out JsonElement value) =>
            root.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

        private TensorFileException Wrong(string name, string expected, JsonElement value) =>
            new(source, $"config field '{name}' must be {expected}, got {value.GetRawText()}");

        public int Int(string name, int fallback)
        {
            if (!TryGet(name, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i <= 0) throw Wrong(name, "a positive integer", v);
            return i;
        }

        public double Double(string name, double fallback)
        {
            if (!TryGet(name, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Number) throw Wrong(name, "a number", v);
            return v.GetDouble();
        }

        public bool Bool(string name, bool fallback)
        {
            if (!TryGet(name, out var v)) return fallback;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Wrong(name, "true or false", v),
            };
        }

        public string? String(string name, string? fallback)
        {
            if (!TryGet(name, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.String) throw Wrong(name, "a string", v);
            return v.GetString();
        }

        public IReadOnlyList<int> IntList(string name, int[] fallback)
        {
            if (!TryGet(name, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Array) throw Wrong(name, "a list of positive integers", v);
            var list = new List<int>();
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int i) || i <= 0) throw Wrong(name, "a list of positive integers", v);
                list.Add(i);
            }
            return list;
        }

        public IReadOnlyList<string> StringList(string name, string[] fallback)
        {
            if (!TryGet(name, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Array) throw Wrong(name, "a list of strings", v);
            var list = new List<string>();
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) throw Wrong(name, "a list of strings", v);
                list.Add(e.GetString()!);
            }
            return list;
        }
    }
}
