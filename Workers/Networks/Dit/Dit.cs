using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// DiT (Peebles &amp; Xie, "Scalable Diffusion Models with Transformers"), as facebookresearch/DiT's models.DiT:
/// patchify the latent, add fixed 2-D sin-cos positions, condition every adaLN-Zero block on
/// c = embed(t) + embed(y), then a modulated linear decoder and unpatchify. Tensors are NCHW like the official code:
/// x (B, C, H, W) → (B, C_out, H, W) with C_out = 2·C when learn_sigma (ε, then the variance values).
/// Member names are the state-dict prefixes, so loading is a lookup.
/// </summary>
public sealed class Dit : IDisposable
{
    /// <summary>forward_with_cfg guides only the first three output channels ("for exact reproducibility" in the official code).</summary>
    public const int GuidedChannels = 3;

    private Dit(StateDictReader w, DitConfig config, IBackend backend)
    {
        Config = config.Validated();
        int d = config.HiddenSize;
        try
        {
            Trunk = new DitTrunk(w, backend, config, d, config.PatchSize, config.LabelTableRows);
            blocks = new DitBlock[config.Depth];
            for (int i = 0; i < config.Depth; i++)
                blocks[i] = new DitBlock(w, backend, $"blocks.{i}", d, config.NumHeads, config.MlpHidden);
            w.EnsureAllUsed();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public DitConfig Config { get; }

    /// <summary>The embedders, pos_embed and final layer (x_embedder, t_embedder, y_embedder, pos_embed, final_layer), shared with DyDiT and SparseDiT.</summary>
    public DitTrunk Trunk { get; } = null!;

    public DitBlock[] blocks { get; } = [];

    /// <summary>
    /// Loads a <c>torch.save</c> file: a bare state dict, or a training checkpoint whose <c>ema</c> (else <c>model</c>)
    /// entry is used. Strict: a missing, unexpected or misshapen key raises <see cref="TensorFileException"/> naming the
    /// file, the key and the shapes. <c>pos_embed</c> may be absent (it is then computed).
    /// </summary>
    public static Dit Load(string path, DitConfig config, IBackend backend)
        => StateDictReader.FromCheckpoint(path, stateDict => FromStateDict(stateDict, path, config, backend));

    /// <summary>Builds the network from state-dict tensors; <paramref name="source"/> names them in error messages.</summary>
    public static Dit FromStateDict(IReadOnlyDictionary<string, StoredTensor> stateDict, string source, DitConfig config, IBackend backend)
        => new(new StateDictReader(stateDict, source), config, backend);

    /// <summary>
    /// model(x, t, y): x (B, C, H, W) latents, t (B) original timesteps 0..999, y (B) labels (the null class allowed).
    /// <paramref name="inspect"/>, when given, sees intermediates by the fixture names (<c>t_freq</c>, <c>t_emb</c>,
    /// <c>y_emb</c>, <c>c</c>, <c>x_embed</c>, <c>block{i}_out</c>, <c>final_out</c>); the tensors are only valid during the call.
    /// </summary>
    public ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, Action<string, Tensor>? inspect = null)
    {
        var cfg = Config;
        LatentInputs.CheckForward("DiT", cfg, x, t.Length, y.Length);
        var macs = new MacCounter();

        using var e = Trunk.Embed(x, t, y, macs, inspect);                       // tokens (B, T, D) + pos_embed, c (B, D)
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i].Forward(e.Tokens, e.C, macs);
            inspect?.Invoke($"block{i}_out", e.Tokens);
        }
        var output = Trunk.Output(e.Tokens, e.C, macs, inspect);                 // final_out (B, T, p·p·C_out), unpatchify
        return new ForwardResult(output, macs.Total, DenseMultiplyAccumulates: macs.Total);
    }

    /// <summary>
    /// forward_with_cfg: x (2n, C, H, W), t (2n), y (2n) = labels then null labels. As the official code, only x[:n] is
    /// used (fed twice); channels 0..2 of both halves become u + s·(c − u), the other channels keep each half's own values.
    /// </summary>
    public ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale)
    {
        using var combined = Trunk.CfgInput(x);
        var result = Forward(combined, t, y);
        Trunk.Guide(result.Output, cfgScale);
        return result;
    }

    public void Dispose()
    {
        Trunk?.Dispose();
        foreach (var block in blocks ?? []) block?.Dispose();
    }
}
