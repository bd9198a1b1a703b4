using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// SparseDiT (FlexDiT, "Dynamic Token Density Control for Diffusion Transformer"), as changsn/FlexDiT's models.DiT at
/// commit ad9fb509: DiT's embeddings, positions, conditioning, final layer and unpatchify, with the blocks regrouped as
/// <code>
/// poolingformer_blocks (full grid, attention = token mean)
/// dumbbell_blocks: y = tokens; x = AdaptiveAvgPool(y) to S×S; token merge (x attends to y); semantic DiT blocks on x;
///                  recovery to the G×G grid (attends to x); DiT blocks on the full grid
/// normal_blocks   (full grid; the only blocks that receive the 'sin' / 'relat' attention bias)
/// final_layer, unpatchify
/// </code>
/// Tensors are NCHW like the official code: x (B, C, H, W) → (B, C_out, H, W). Member names are the state-dict prefixes.
/// <para>
/// Note for users of the published code: its <c>forward</c> reads <c>self.longshortcut</c>, which <c>__init__</c> never
/// sets, so the released model raises AttributeError on its first call. The attribute only guards a list of skip
/// tensors that nothing reads; this implementation behaves as <c>longshortcut = False</c> (what the fixtures patch in).
/// </para>
/// <para>
/// S (<c>semantic_size</c>) is a constructor constant there, but pooling has no weights, so any S runs on the same
/// checkpoint: <see cref="Forward"/> takes an optional override (the paper varies the token density with the timestep;
/// the released inference code does not).
/// </para>
/// </summary>
public sealed class SparseDit : IDisposable
{
    /// <summary>forward_with_cfg guides only the first three output channels, as DiT's.</summary>
    public const int GuidedChannels = Dit.GuidedChannels;

    private readonly IBackend _backend;

    private SparseDit(StateDictReader w, SparseDitConfig config, IBackend backend)
    {
        _backend = backend;
        Config = config.Validated();
        int d = config.HiddenSize, t = config.Tokens, g = config.GridSize, heads = config.NumHeads, hidden = config.MlpHidden;
        try
        {
            Trunk = new DitTrunk(w, backend, config, d, config.PatchSize, config.LabelTableRows);

            poolingformer_blocks = new PoolingformerBlock[config.NumPoolingformer];
            for (int i = 0; i < poolingformer_blocks.Length; i++)
                poolingformer_blocks[i] = new PoolingformerBlock(w, backend, $"poolingformer_blocks.{i}", d, hidden);
            dumbbell_blocks = new DumbbellBlock[config.NumDumbbell];
            for (int i = 0; i < dumbbell_blocks.Length; i++)
                dumbbell_blocks[i] = new DumbbellBlock(w, backend, $"dumbbell_blocks.{i}", d, g, heads, hidden, config.DumbbellGroup);
            normal_blocks = new DitBlock[config.NumNormalBlock];
            for (int i = 0; i < normal_blocks.Length; i++)
                normal_blocks[i] = new DitBlock(w, backend, $"normal_blocks.{i}", d, heads, hidden);

            switch (config.AttnRelatPos)
            {
                case SparseDitAttentionBias.Sin:
                    SinBias = BuildSinBias(Trunk.PosEmbedValues, t, d, config.Temp);
                    break;
                case SparseDitAttentionBias.Relat:
                    relative_pos_embedder = new RelativePositionBias[config.NumNormalBlock];
                    for (int i = 0; i < relative_pos_embedder.Length; i++)
                        relative_pos_embedder[i] = new RelativePositionBias(w, backend, $"relative_pos_embedder.{i}", g, heads);
                    break;
            }
            w.EnsureAllUsed();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public SparseDitConfig Config { get; }

    /// <summary>The embedders, pos_embed and final layer (x_embedder, t_embedder, y_embedder, pos_embed, final_layer), shared with DiT and DyDiT.</summary>
    public DitTrunk Trunk { get; } = null!;

    public PoolingformerBlock[] poolingformer_blocks { get; } = [];

    public DumbbellBlock[] dumbbell_blocks { get; } = [];

    public DitBlock[] normal_blocks { get; } = [];

    /// <summary>'relat' only: one relative-position bias per normal block; empty otherwise.</summary>
    public RelativePositionBias[] relative_pos_embedder { get; } = [];

    /// <summary>'sin' only: the (1, T, T) bias (pos_embed · D^-½)·pos_embedᵀ / temp; null otherwise.</summary>
    public Tensor? SinBias { get; }

    /// <summary>
    /// Loads a <c>torch.save</c> file: a bare state dict, or a training checkpoint whose <c>ema</c> (else <c>model</c>)
    /// entry is used (FlexDiT's find_model with mode='ema'). Strict: a missing, unexpected or misshapen key raises
    /// <see cref="TensorFileException"/> naming the file, the key and the shapes. <c>pos_embed</c> and the
    /// 'relat' <c>relative_position_index</c> buffers may be absent (they are then computed).
    /// </summary>
    public static SparseDit Load(string path, SparseDitConfig config, IBackend backend)
        => StateDictReader.FromCheckpoint(path, stateDict => FromStateDict(stateDict, path, config, backend));

    /// <summary>Builds the network from state-dict tensors; <paramref name="source"/> names them in error messages.</summary>
    public static SparseDit FromStateDict(IReadOnlyDictionary<string, StoredTensor> stateDict, string source, SparseDitConfig config, IBackend backend)
        => new(new StateDictReader(stateDict, source), config, backend);

    // 'sin': (pos · D^-½) @ posᵀ / temp in float32, in that order (the scalar product rounded before the matrix product)
    private Tensor BuildSinBias(float[] pos, int t, int d, double temp)
    {
        var scaled = new float[pos.Length];
        float factor = (float)Math.Pow(d, -0.5);
        for (int i = 0; i < pos.Length; i++) scaled[i] = pos[i] * factor;
        using var a = _backend.FromHost(scaled, t, d);
        using var b = _backend.FromHost(pos, t, d);
        using var product = _backend.Empty(t, t);
        _backend.Gemm(a, false, b, true, product);
        var values = product.ToArray();
        if (temp != 1.0)
        {
            float divisor = (float)temp;
            for (int i = 0; i < values.Length; i++) values[i] /= divisor;
        }
        return _backend.FromHost(values, 1, t, t);
    }

    /// <summary>
    /// model(x, t, y): x (B, C, H, W) latents, t (B) original timesteps 0..999, y (B) labels (the null class allowed).
    /// <paramref name="semanticSize"/> overrides the configured pooled grid side S for this call.
    /// <paramref name="inspect"/>, when given, sees each stage's output under its module name (the fixtures' names
    /// without their <c>inter_</c> prefix): <c>poolingformer_blocks.{i}</c>, <c>down_sample.call{i}</c> (the pooled tokens
    /// entering dumbbell i), <c>dumbbell_blocks.{i}.{token_merge_blocks,semantic_blocks,token_recover_blocks,normal_blocks}.{j}</c>,
    /// <c>normal_blocks.{i}</c>, <c>final_layer</c> (before unpatchify); the tensors are only valid during the call.
    /// The result's MAC count is what this implementation executed (<see cref="SparseDitConfig.MultiplyAccumulatesPerSample"/> per sample).
    /// </summary>
    public ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, Action<string, Tensor>? inspect = null, int? semanticSize = null)
    {
        var cfg = Config;
        int b = LatentInputs.CheckForward("SparseDiT", cfg, x, t.Length, y.Length), d = cfg.HiddenSize, g = cfg.GridSize;
        int s = semanticSize ?? cfg.SemanticSize;
        SparseDitConfig.CheckSemanticSize(s);
        var macs = new MacCounter();

        using var e = Trunk.Embed(x, t, y, macs);                                // tokens (B, T, D) + pos_embed, c (B, D)
        var c = e.C;
        for (int i = 0; i < poolingformer_blocks.Length; i++)
        {
            poolingformer_blocks[i].Forward(e.Tokens, c, macs);
            inspect?.Invoke($"poolingformer_blocks.{i}", e.Tokens);
        }
        for (int i = 0; i < dumbbell_blocks.Length; i++)
        {
            using var pooled = _backend.Empty(b, s * s, d);
            using (var full = e.Tokens.Reshape(b, g, g, d))
            using (var coarse = pooled.Reshape(b, s, s, d))
                _backend.AdaptiveAvgPool2d(full, coarse);
            inspect?.Invoke($"down_sample.call{i}", pooled);
            e.ReplaceTokens(dumbbell_blocks[i].Forward(pooled, e.Tokens, c, macs, inspect));
        }
        for (int i = 0; i < normal_blocks.Length; i++)
        {
            var bias = cfg.AttnRelatPos switch
            {
                SparseDitAttentionBias.Sin => SinBias,
                SparseDitAttentionBias.Relat => relative_pos_embedder[i].Bias,
                _ => null,
            };
            normal_blocks[i].Forward(e.Tokens, c, macs, bias);
            inspect?.Invoke($"normal_blocks.{i}", e.Tokens);
        }
        var output = Trunk.Output(e.Tokens, c, macs, inspect, inspectName: "final_layer"); // (B, T, p·p·C_out), unpatchify
        return new ForwardResult(output, macs.Total);
    }

    /// <summary>
    /// forward_with_cfg, as DiT's: x (2n, C, H, W), t (2n), y (2n) = labels then null labels; only x[:n] is used (fed
    /// twice); channels 0..2 of both halves become u + s·(c − u), the other channels keep each half's own values.
    /// </summary>
    public ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale, int? semanticSize = null)
    {
        using var combined = Trunk.CfgInput(x);
        var result = Forward(combined, t, y, semanticSize: semanticSize);
        Trunk.Guide(result.Output, cfgScale);
        return result;
    }

    public void Dispose()
    {
        Trunk?.Dispose();
        foreach (var block in poolingformer_blocks ?? []) block?.Dispose();
        foreach (var block in dumbbell_blocks ?? []) block?.Dispose();
        foreach (var block in normal_blocks ?? []) block?.Dispose();
        foreach (var bias in relative_pos_embedder ?? []) bias?.Dispose();
        SinBias?.Dispose();
    }
}
