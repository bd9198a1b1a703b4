using System.Text.Json;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// The constructor arguments of the official <c>models.DiT</c> (names and defaults as there) plus the numbers derived
/// from them. Build one from a preset name (<see cref="Preset"/>) or from the <c>constructor_kwargs</c> JSON that the
/// fixtures record (<see cref="FromJson"/>).
/// </summary>
public sealed record DitConfig(
    int InputSize = 32,
    int PatchSize = 2,
    int InChannels = 4,
    int HiddenSize = 1152,
    int Depth = 28,
    int NumHeads = 16,
    double MlpRatio = 4.0,
    double ClassDropoutProb = 0.1,
    int NumClasses = 1000,
    bool LearnSigma = true) : ILatentNetworkConfig
{
    /// <summary>Output channels: ε and, with learn_sigma, the variance interpolation v (2·in_channels).</summary>
    public int OutChannels => LearnSigma ? 2 * InChannels : InChannels;

    public int GridSize => InputSize / PatchSize;

    /// <summary>Tokens T = (input_size / patch_size)².</summary>
    public int Tokens => GridSize * GridSize;

    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>MLP hidden width int(hidden_size · mlp_ratio), as timm truncates it.</summary>
    public int MlpHidden => (int)(HiddenSize * MlpRatio);

    /// <summary>Rows of the label table: num_classes, plus the null class when trained with label dropout.</summary>
    public int LabelTableRows => NumClasses + (ClassDropoutProb > 0 ? 1 : 0);

    /// <summary>The label classifier-free guidance feeds for "no class" (row num_classes), or null if the table has no such row.</summary>
    public int? NullClass => ClassDropoutProb > 0 ? NumClasses : null;

    // name → (depth, hidden size, patch size, heads), the official DiT_models table
    private static readonly Dictionary<string, (int Depth, int Hidden, int Patch, int Heads)> Presets = new(StringComparer.OrdinalIgnoreCase)
    {
        ["DiT-XL/2"] = (28, 1152, 2, 16), ["DiT-XL/4"] = (28, 1152, 4, 16), ["DiT-XL/8"] = (28, 1152, 8, 16),
        ["DiT-L/2"] = (24, 1024, 2, 16), ["DiT-L/4"] = (24, 1024, 4, 16), ["DiT-L/8"] = (24, 1024, 8, 16),
        ["DiT-B/2"] = (12, 768, 2, 12), ["DiT-B/4"] = (12, 768, 4, 12), ["DiT-B/8"] = (12, 768, 8, 12),
        ["DiT-S/2"] = (12, 384, 2, 6), ["DiT-S/4"] = (12, 384, 4, 6), ["DiT-S/8"] = (12, 384, 8, 6),
    };

    public static IReadOnlyCollection<string> PresetNames => Presets.Keys;

    /// <summary>A named model (<c>DiT-XL/2</c> … <c>DiT-S/8</c>) for latents of <paramref name="inputSize"/>² (image size / 8).</summary>
    public static DitConfig Preset(string name, int inputSize = 32, int numClasses = 1000)
    {
        if (!Presets.TryGetValue(name, out var p))
            throw new ArgumentException($"unknown DiT model '{name}'; known: {string.Join(", ", Presets.Keys)}");
        return new DitConfig(InputSize: inputSize, PatchSize: p.Patch, HiddenSize: p.Hidden, Depth: p.Depth, NumHeads: p.Heads, NumClasses: numClasses).Validated();
    }

    /// <summary>
    /// Reads DiT's constructor keyword arguments from JSON: either the object itself or an object with a
    /// <c>constructor_kwargs</c> member (the fixtures' model JSON). Absent arguments take the official defaults;
    /// an unknown argument is an error.
    /// </summary>
    public static DitConfig FromJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return FromJson(doc.RootElement);
    }

    public static DitConfig FromJson(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object && element.TryGetProperty("constructor_kwargs", out var inner)) element = inner;
        if (element.ValueKind != JsonValueKind.Object) throw new FormatException($"DiT config must be a JSON object, got {element.ValueKind}");
        var c = new DitConfig();
        foreach (var p in element.EnumerateObject())
        {
            c = p.Name switch
            {
                "input_size" => c with { InputSize = p.Value.GetInt32() },
                "patch_size" => c with { PatchSize = p.Value.GetInt32() },
                "in_channels" => c with { InChannels = p.Value.GetInt32() },
                "hidden_size" => c with { HiddenSize = p.Value.GetInt32() },
                "depth" => c with { Depth = p.Value.GetInt32() },
                "num_heads" => c with { NumHeads = p.Value.GetInt32() },
                "mlp_ratio" => c with { MlpRatio = p.Value.GetDouble() },
                "class_dropout_prob" => c with { ClassDropoutProb = p.Value.GetDouble() },
                "num_classes" => c with { NumClasses = p.Value.GetInt32() },
                "learn_sigma" => c with { LearnSigma = p.Value.GetBoolean() },
                _ => throw new FormatException($"unknown DiT constructor argument '{p.Name}'"),
            };
        }
        return c.Validated();
    }

    /// <summary>Checks that the numbers fit together (patch grid, heads, sin-cos table); returns this config.</summary>
    public DitConfig Validated()
    {
        CheckBackbone(InputSize, PatchSize, HiddenSize, NumHeads);
        if (InChannels <= 0 || Depth < 0 || NumClasses <= 0 || MlpHidden <= 0)
            throw new ArgumentException($"invalid DiT config {this}");
        return this;
    }

    /// <summary>What every DiT-style backbone needs (DiT, DyDiT, SparseDiT): a whole patch grid, heads that split the width, a 2-D sin-cos table.</summary>
    internal static void CheckBackbone(int inputSize, int patchSize, int hiddenSize, int numHeads)
    {
        if (inputSize <= 0 || patchSize <= 0 || inputSize % patchSize != 0)
            throw new ArgumentException($"input_size {inputSize} is not a positive multiple of patch_size {patchSize}");
        if (numHeads <= 0 || hiddenSize <= 0 || hiddenSize % numHeads != 0)
            throw new ArgumentException($"hidden_size {hiddenSize} does not split into {numHeads} heads");
        if (hiddenSize % 4 != 0) throw new ArgumentException($"hidden_size {hiddenSize} must be divisible by 4 (2-D sin-cos positions)");
    }

    /// <summary>
    /// Multiply-accumulates of one forward pass per sample, from the layer shapes: patch embedding, timestep MLP,
    /// per block adaLN (D·6D), qkv (3·T·D²), attention (2·T²·D), proj (T·D²), MLP (2·T·D·H), final adaLN (D·2D)
    /// and final linear (T·D·p²·C_out). DiT-XL/2 at 256² (input 32): 118.62 G.
    /// </summary>
    public long MultiplyAccumulatesPerSample()
    {
        long t = Tokens, d = HiddenSize, p2 = PatchSize * PatchSize;
        long patchEmbed = t * d * InChannels * p2;
        long timestep = TimestepEmbedderFeatures * d + d * d;
        long block = d * 6 * d + 3 * t * d * d + 2 * t * t * d + t * d * d + 2 * t * d * MlpHidden;
        long final = d * 2 * d + t * d * p2 * OutChannels;
        return patchEmbed + timestep + Depth * block + final;
    }

    private const int TimestepEmbedderFeatures = TimestepEmbedder.FrequencyEmbeddingSize;
}
