using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// The part of facebookresearch/DiT's models.DiT that DiT, DyDiT and SparseDiT share unchanged: the patch, timestep and
/// label embedders, the fixed 2-D sin-cos <c>pos_embed</c>, the final layer, unpatchify and forward_with_cfg. Each model
/// runs <see cref="Embed"/> → its own blocks → <see cref="Output"/>. Member names are the state-dict prefixes, which
/// are the same in the three official codes (<c>x_embedder.*</c>, <c>t_embedder.*</c>, <c>y_embedder.*</c>,
/// <c>pos_embed</c>, <c>final_layer.*</c>).
/// </summary>
public sealed class DitTrunk : IDisposable
{
    private readonly IBackend _backend;
    private readonly ILatentNetworkConfig _config;

    /// <summary>
    /// Reads the trunk's weights from <paramref name="w"/>; <c>pos_embed</c> may be absent (it is then computed).
    /// The grid side is input_size / patch_size.
    /// </summary>
    public DitTrunk(StateDictReader w, IBackend backend, ILatentNetworkConfig config, int hiddenSize, int patchSize, int labelTableRows)
    {
        _backend = backend;
        _config = config;
        HiddenSize = hiddenSize;
        PatchSize = patchSize;
        int grid = config.InputSize / patchSize;
        try
        {
            x_embedder = new PatchEmbed(w, backend, "x_embedder", config.InChannels, hiddenSize, patchSize);
            t_embedder = new TimestepEmbedder(w, backend, "t_embedder", hiddenSize);
            y_embedder = new LabelEmbedder(w, backend, "y_embedder", labelTableRows, hiddenSize);
            PosEmbedValues = SinCosPositionalEmbedding.LoadOrBuild(w, hiddenSize, grid);
            pos_embed = backend.FromHost(PosEmbedValues, 1, grid * grid, hiddenSize);
            final_layer = new FinalLayer(w, backend, "final_layer", hiddenSize, patchSize, config.OutChannels);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int HiddenSize { get; }

    public int PatchSize { get; }

    public PatchEmbed x_embedder { get; } = null!;

    public TimestepEmbedder t_embedder { get; } = null!;

    public LabelEmbedder y_embedder { get; } = null!;

    /// <summary>(1, T, D).</summary>
    public Tensor pos_embed { get; } = null!;

    /// <summary>pos_embed's values on the host (T·D), as loaded or computed.</summary>
    public float[] PosEmbedValues { get; } = [];

    public FinalLayer final_layer { get; } = null!;

    /// <summary>
    /// tokens = x_embedder(x) + pos_embed (B, T, D), t_emb = t_embedder(t) (B, D), c = t_emb + y_embedder(y) (B, D).
    /// <paramref name="inspect"/> sees <c>x_embed</c> (before pos_embed), <c>t_freq</c>, <c>t_emb</c>, <c>y_emb</c>, <c>c</c>.
    /// </summary>
    public DitEmbedding Embed(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, MacCounter macs, Action<string, Tensor>? inspect = null)
    {
        var tokens = x_embedder.Forward(x, macs);                                // (B, T, D)
        Tensor? tEmb = null, c = null;
        try
        {
            inspect?.Invoke("x_embed", tokens);
            SinCosPositionalEmbedding.AddTo(_backend, tokens, pos_embed);      // + pos_embed, every sample
            tEmb = t_embedder.Forward(t, macs, inspect);                         // (B, D)
            inspect?.Invoke("t_emb", tEmb);
            using var yEmb = y_embedder.Forward(y);                              // (B, D)
            inspect?.Invoke("y_emb", yEmb);
            c = _backend.Empty(x.Dim(0), HiddenSize);
            _backend.Add(tEmb, yEmb, c);
            inspect?.Invoke("c", c);
            return new DitEmbedding(tokens, tEmb, c);
        }
        catch
        {
            tokens.Dispose();
            tEmb?.Dispose();
            c?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// final_layer(tokens, c) (B, T, p·p·C_out), shown to <paramref name="inspect"/> as <paramref name="inspectName"/>,
    /// then unpatchify to (B, C_out, H, W). The caller owns the returned tensor.
    /// </summary>
    public Tensor Output(Tensor tokens, Tensor c, MacCounter macs, Action<string, Tensor>? inspect = null, string inspectName = "final_out")
    {
        using var patches = final_layer.Forward(tokens, c, macs);
        inspect?.Invoke(inspectName, patches);
        var output = _backend.Empty(tokens.Dim(0), _config.OutChannels, _config.InputSize, _config.InputSize);
        try
        {
            _backend.Unpatchify(patches, PatchSize, output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>
    /// forward_with_cfg's model input: of x (2n, C, H, W) only the conditional half is used, fed twice ([x[:n]; x[:n]]),
    /// as in the official code. The caller owns the returned tensor.
    /// </summary>
    public Tensor CfgInput(Tensor x) => LatentInputs.ConditionalHalfTwice(_backend, x, _config);

    /// <summary>
    /// forward_with_cfg's mixing, in place on the model output (2n, C_out, H, W): channels 0..2 of both halves become
    /// u + s·(c − u) (c the first half, u the second); the other channels keep each half's own values.
    /// </summary>
    public void Guide(Tensor output, float cfgScale) => _backend.ClassifierFreeGuidance(output, Dit.GuidedChannels, cfgScale, output);

    public void Dispose()
    {
        x_embedder?.Dispose();
        t_embedder?.Dispose();
        pos_embed?.Dispose();
        final_layer?.Dispose();
    }
}

/// <summary>
/// <see cref="DitTrunk.Embed"/>'s tensors: the token stream (B, T, D) the blocks update, t_emb and the conditioning c
/// (B, D). Disposing frees the three.
/// </summary>
public sealed class DitEmbedding(Tensor tokens, Tensor tEmb, Tensor c) : IDisposable
{
    /// <summary>The current token stream; <see cref="ReplaceTokens"/> swaps in a new one (e.g. a block that returns a new tensor).</summary>
    public Tensor Tokens { get; private set; } = tokens;

    public Tensor TEmb { get; } = tEmb;

    public Tensor C { get; } = c;

    /// <summary>Makes <paramref name="next"/> the token stream and frees the previous one.</summary>
    public void ReplaceTokens(Tensor next)
    {
        if (ReferenceEquals(next, Tokens)) return;
        Tokens.Dispose();
        Tokens = next;
    }

    public void Dispose()
    {
        Tokens.Dispose();
        TEmb.Dispose();
        C.Dispose();
    }
}
