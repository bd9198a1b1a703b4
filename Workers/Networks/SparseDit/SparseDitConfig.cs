using System.Text.Json;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>Which additive attention bias FlexDiT's top <c>normal_blocks</c> get (constructor argument <c>attn_relat_pos</c>).</summary>
public enum SparseDitAttentionBias
{
    /// <summary><c>attn_relat_pos=None</c> (the default): plain attention everywhere.</summary>
    None,

    /// <summary><c>'sin'</c>: one (T, T) bias (pos_embed · D^-½)·pos_embedᵀ / temp shared by all heads and blocks.</summary>
    Sin,

    /// <summary><c>'relat'</c>: a BEiT relative-position table per top normal block (keys <c>relative_pos_embedder.{i}.*</c>).</summary>
    Relat,
}

/// <summary>
/// How many blocks of each kind one dumbbell (FlexDiT's <c>DumbbellBlock</c>, constructor argument <c>dumbbell_group</c>)
/// holds, in execution order: token-merge cross-attention blocks on the pooled tokens, semantic DiT blocks on the pooled
/// tokens, recovery blocks back to the full grid, and DiT blocks on the full grid.
/// </summary>
public readonly record struct DumbbellGroup(int TokenMerge, int Semantic, int Recover, int Normal)
{
    public int Total => TokenMerge + Semantic + Recover + Normal;

    public override string ToString() => $"[{TokenMerge}, {Semantic}, {Recover}, {Normal}]";
}

/// <summary>
/// The constructor arguments of FlexDiT's <c>models.DiT</c> (the SparseDiT network; names and defaults as there) plus the
/// numbers derived from them. The DiT part (<see cref="Dit"/>) is the same: input/patch sizes, width, heads, label table.
/// Depth is regrouped as <c>num_poolingformer + num_dumbbell · Σ dumbbell_group + num_normal_block</c>.
/// </summary>
public sealed record SparseDitConfig(
    int InputSize = 32,
    int PatchSize = 2,
    int InChannels = 4,
    int HiddenSize = 1152,
    int Depth = 28,
    int NumPoolingformer = 2,
    int NumDumbbell = 4,
    int NumNormalBlock = 2,
    int SemanticSize = 8,
    int NumHeads = 16,
    double MlpRatio = 4.0,
    double ClassDropoutProb = 0.1,
    int NumClasses = 1000,
    bool LearnSigma = true,
    SparseDitAttentionBias AttnRelatPos = SparseDitAttentionBias.None,
    double Temp = 1.0) : ILatentNetworkConfig
{
    /// <summary><c>dumbbell_group</c>; the constructor's default is [2, 2, 1, 1] (the sampling scripts pass [1, 3, 1, 1]).</summary>
    public DumbbellGroup DumbbellGroup { get; init; } = new(2, 2, 1, 1);

    public int OutChannels => LearnSigma ? 2 * InChannels : InChannels;

    /// <summary>Side G of the full token grid (input_size / patch_size).</summary>
    public int GridSize => InputSize / PatchSize;

    /// <summary>Tokens T = G².</summary>
    public int Tokens => GridSize * GridSize;

    public int HeadDim => HiddenSize / NumHeads;

    public int MlpHidden => (int)(HiddenSize * MlpRatio);

    public int LabelTableRows => NumClasses + (ClassDropoutProb > 0 ? 1 : 0);

    public int? NullClass => ClassDropoutProb > 0 ? NumClasses : null;

    /// <summary>Rows of a 'relat' bias table: (2G − 1)² relative offsets plus BEiT's 3 class-token entries (unused here).</summary>
    public int RelativeTableRows => (2 * GridSize - 1) * (2 * GridSize - 1) + 3;

    /// <summary>
    /// SparseDiT-XL/2 as FlexDiT's sample_ddp.py builds it: DiT-XL/2 widths, 2 pooling blocks, 4 dumbbells of [1, 3, 1, 1],
    /// 2 normal blocks, semantic grid 8×8 (sample_ddp.py's default; sample.py uses 16), no attention bias.
    /// </summary>
    public static SparseDitConfig Preset(string name, int inputSize = 32, int numClasses = 1000, int semanticSize = 8)
    {
        if (!string.Equals(name, "SparseDiT-XL/2", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"unknown SparseDiT model '{name}'; known: SparseDiT-XL/2");
        return new SparseDitConfig(InputSize: inputSize, NumClasses: numClasses, SemanticSize: semanticSize)
        {
            DumbbellGroup = new DumbbellGroup(1, 3, 1, 1),
        }.Validated();
    }

    public static IReadOnlyCollection<string> PresetNames { get; } = ["SparseDiT-XL/2"];

    /// <summary>
    /// Reads the constructor keyword arguments from JSON: the object itself or one with a <c>constructor_kwargs</c>
    /// member (the fixtures' model JSON). Absent arguments take the official defaults; <c>use_checkpoint</c> and
    /// <c>drop_path</c> are accepted and have no effect at inference; an unknown argument is an error.
    /// </summary>
    public static SparseDitConfig FromJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return FromJson(doc.RootElement);
    }

    public static SparseDitConfig FromJson(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object && element.TryGetProperty("constructor_kwargs", out var inner)) element = inner;
        if (element.ValueKind != JsonValueKind.Object) throw new FormatException($"SparseDiT config must be a JSON object, got {element.ValueKind}");
        var c = new SparseDitConfig();
        foreach (var p in element.EnumerateObject())
        {
            c = p.Name switch
            {
                "input_size" => c with { InputSize = p.Value.GetInt32() },
                "patch_size" => c with { PatchSize = p.Value.GetInt32() },
                "in_channels" => c with { InChannels = p.Value.GetInt32() },
                "hidden_size" => c with { HiddenSize = p.Value.GetInt32() },
                "depth" => c with { Depth = p.Value.GetInt32() },
                "num_poolingformer" => c with { NumPoolingformer = p.Value.GetInt32() },
                "num_dumbbell" => c with { NumDumbbell = p.Value.GetInt32() },
                "num_normal_block" => c with { NumNormalBlock = p.Value.GetInt32() },
                "semantic_size" => c with { SemanticSize = p.Value.GetInt32() },
                "dumbbell_group" => c with { DumbbellGroup = ReadGroup(p.Value) },
                "num_heads" => c with { NumHeads = p.Value.GetInt32() },
                "mlp_ratio" => c with { MlpRatio = p.Value.GetDouble() },
                "class_dropout_prob" => c with { ClassDropoutProb = p.Value.GetDouble() },
                "num_classes" => c with { NumClasses = p.Value.GetInt32() },
                "learn_sigma" => c with { LearnSigma = p.Value.GetBoolean() },
                "attn_relat_pos" => c with { AttnRelatPos = ReadBias(p.Value) },
                "temp" => c with { Temp = p.Value.GetDouble() },
                "use_checkpoint" => p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False ? c : throw new FormatException("use_checkpoint must be a boolean"),
                "drop_path" => p.Value.GetDouble() >= 0 ? c : throw new FormatException("drop_path must be ≥ 0"),
                _ => throw new FormatException($"unknown SparseDiT constructor argument '{p.Name}'"),
            };
        }
        return c.Validated();
    }

    private static DumbbellGroup ReadGroup(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != 4)
            throw new FormatException($"dumbbell_group must be a list of 4 block counts, got {e}");
        var v = e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
        return new DumbbellGroup(v[0], v[1], v[2], v[3]);
    }

    private static SparseDitAttentionBias ReadBias(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null => SparseDitAttentionBias.None,
        JsonValueKind.String when e.GetString() == "sin" => SparseDitAttentionBias.Sin,
        JsonValueKind.String when e.GetString() == "relat" => SparseDitAttentionBias.Relat,
        _ => throw new FormatException($"attn_relat_pos must be null, \"sin\" or \"relat\", got {e}"),
    };

    /// <summary>Checks that the numbers fit together (as the official constructor's assertion, and more); returns this config.</summary>
    public SparseDitConfig Validated()
    {
        DitConfig.CheckBackbone(InputSize, PatchSize, HiddenSize, NumHeads);
        if (InChannels <= 0 || NumClasses <= 0 || MlpHidden <= 0) throw new ArgumentException($"invalid SparseDiT config {this}");
        var g = DumbbellGroup;
        if (NumPoolingformer < 0 || NumDumbbell < 0 || NumNormalBlock < 0 || g.TokenMerge < 0 || g.Semantic < 0 || g.Recover < 0 || g.Normal < 0)
            throw new ArgumentException($"block counts must be ≥ 0 (num_poolingformer {NumPoolingformer}, num_dumbbell {NumDumbbell}, dumbbell_group {g}, num_normal_block {NumNormalBlock})");
        if (g.Total * NumDumbbell + NumPoolingformer + NumNormalBlock != Depth)
            throw new ArgumentException($"sum(dumbbell_group {g}) · num_dumbbell {NumDumbbell} + num_poolingformer {NumPoolingformer} + num_normal_block {NumNormalBlock} != depth {Depth}");
        if (NumDumbbell > 0 && g.Recover < 1)
            throw new ArgumentException($"dumbbell_group {g} has no recovery block: the dumbbell output would stay on the semantic grid");
        CheckSemanticSize(SemanticSize);
        if (!(Temp > 0 || Temp < 0)) throw new ArgumentException($"temp must be non-zero, got {Temp}");
        return this;
    }

    /// <summary>The pooled grid may have any positive side (AdaptiveAvgPool2d has no weights); the pooled token count is its square.</summary>
    public static void CheckSemanticSize(int semanticSize)
    {
        if (semanticSize <= 0) throw new ArgumentException($"semantic_size must be positive, got {semanticSize}");
    }

    /// <summary>
    /// Multiply-accumulates of one forward pass per sample as this implementation executes it (see <see cref="SparseDit"/>):
    /// pooling blocks apply v and proj to the token mean (2·D², not T·D² each), recovery blocks apply merged_layer1 before
    /// up-sampling (on S² tokens), cross-attention costs 2·N·M·D; adaLN, patch embedding, timestep MLP and final layer as DiT.
    /// <paramref name="semanticSize"/> overrides the configured S.
    /// </summary>
    public long MultiplyAccumulatesPerSample(int? semanticSize = null)
    {
        int sSide = semanticSize ?? SemanticSize;
        CheckSemanticSize(sSide);
        long t = Tokens, d = HiddenSize, h = MlpHidden, s = (long)sSide * sSide, p2 = PatchSize * PatchSize;
        long adaLn = 6 * d * d;
        long Mlp(long n) => 2 * n * d * h;
        long DitBlock(long n) => adaLn + 3 * n * d * d + 2 * n * n * d + n * d * d + Mlp(n);
        long total = t * d * InChannels * p2 + TimestepEmbedder.FrequencyEmbeddingSize * d + d * d;
        total += NumPoolingformer * (adaLn + 2 * d * d + Mlp(t));
        var g = DumbbellGroup;
        long dumbbell = 0;
        dumbbell += g.TokenMerge * (adaLn + s * d * d + 2 * t * d * d + 2 * s * t * d + s * d * d + Mlp(s));
        dumbbell += g.Semantic * DitBlock(s);
        for (int r = 0; r < g.Recover; r++)
        {
            long nIn = r == 0 ? s : t; // later recovery blocks start from the full grid
            dumbbell += adaLn + nIn * d * d + t * d * d + t * d * d + 2 * nIn * d * d + 2 * t * nIn * d + t * d * d + Mlp(t);
        }
        dumbbell += g.Normal * DitBlock(t);
        total += NumDumbbell * dumbbell;
        total += NumNormalBlock * DitBlock(t);
        total += 2 * d * d + t * d * p2 * OutChannels;
        return total;
    }
}
