using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// DyDiT (Zhao et al., "Dynamic Diffusion Transformer"), as alibaba-damo-academy/DyDiT's models.DiT at inference:
/// a DiT whose blocks carry a head router and an MLP channel-group router fed with the timestep embedding only
/// (timestep-wise dynamic width) and a token router on the residual stream after attention (spatial-wise dynamic
/// tokens); see <see cref="DyDitBlock"/>. The constructor arguments are DiT's (<see cref="DitConfig"/>); the
/// official checkpoints are DiT-XL/2. Head and group masks are decided once per distinct timestep of a call and the
/// masked work is skipped, not multiplied by zero.
/// </summary>
public sealed class DyDit : IDisposable
{
    private readonly IBackend _backend;

    private DyDit(StateDictReader w, DitConfig config, IBackend backend)
    {
        _backend = backend;
        Config = config.Validated();
        int d = config.HiddenSize;
        if (config.NumHeads < 2) throw new ArgumentException($"DyDiT routes heads 1..H−1 and needs at least 2 heads, got {config.NumHeads}");
        if (config.MlpHidden % config.NumHeads != 0) throw new ArgumentException($"DyDiT splits the MLP's {config.MlpHidden} hidden channels into {config.NumHeads} groups");
        if (d < 16) throw new ArgumentException($"DyDiT's token router has D/16 hidden units; hidden size {d} is too small");
        try
        {
            Trunk = new DitTrunk(w, backend, config, d, config.PatchSize, config.LabelTableRows);
            blocks = new DyDitBlock[config.Depth];
            for (int i = 0; i < config.Depth; i++)
                blocks[i] = new DyDitBlock(w, backend, $"blocks.{i}", d, config.NumHeads, config.MlpHidden);
            w.EnsureAllUsed();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public DitConfig Config { get; }

    /// <summary>The embedders, pos_embed and final layer (x_embedder, t_embedder, y_embedder, pos_embed, final_layer), shared with DiT and SparseDiT.</summary>
    public DitTrunk Trunk { get; } = null!;

    public DyDitBlock[] blocks { get; } = [];

    /// <summary>
    /// Loads a <c>torch.save</c> file: a bare state dict, or a training checkpoint whose <c>ema</c> (else <c>model</c>)
    /// entry is used (what the official <c>find_model</c> returns). Strict: the DiT keys plus, per block,
    /// <c>attn_rate.router.*</c>, <c>mlp_rate.router.*</c> (H − 1, D) and <c>token_selection.mlp_head.{0,2}.*</c>;
    /// a missing, unexpected or misshapen key raises <see cref="TensorFileException"/>. <c>pos_embed</c> may be absent.
    /// </summary>
    public static DyDit Load(string path, DitConfig config, IBackend backend)
        => StateDictReader.FromCheckpoint(path, stateDict => FromStateDict(stateDict, path, config, backend));

    /// <summary>Builds the network from state-dict tensors; <paramref name="source"/> names them in error messages.</summary>
    public static DyDit FromStateDict(IReadOnlyDictionary<string, StoredTensor> stateDict, string source, DitConfig config, IBackend backend)
        => new(new StateDictReader(stateDict, source), config, backend);

    /// <summary>
    /// model(x, t, y) on the dynamic path (<c>complete_model=False</c>, what sampling uses), or with
    /// <paramref name="completeModel"/> the dense path that ignores every router. x (B, C, H, W), t (B) original
    /// timesteps, y (B) labels. <paramref name="inspect"/> sees DiT's names (<c>x_embed</c>, <c>t_freq</c>, <c>t_emb</c>,
    /// <c>y_emb</c>, <c>c</c>, <c>block{i}_out</c>, <c>final_out</c>; valid during the call only).
    /// </summary>
    public DyDitForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, bool completeModel = false, Action<string, Tensor>? inspect = null)
    {
        var cfg = Config;
        int b = LatentInputs.CheckForward("DyDiT", cfg, x, t.Length, y.Length);
        var macs = new MacCounter();
        var routing = new DyDitRouting(b, cfg.Depth, cfg.NumHeads, cfg.Tokens, completeModel);

        using var e = Trunk.Embed(x, t, y, macs, inspect);
        DecideWidths(e.TEmb, t, routing, macs);
        long branches = 0;
        for (int i = 0; i < blocks.Length; i++)
        {
            branches += blocks[i].Forward(e.Tokens, e.C, i, routing, macs);
            inspect?.Invoke($"block{i}_out", e.Tokens);
        }
        var output = Trunk.Output(e.Tokens, e.C, macs, inspect);
        var (attn, mlp) = DyDitRouting.BlockMultiplyAccumulates(cfg);
        return new DyDitForwardResult(output, macs.Total, b * cfg.MultiplyAccumulatesPerSample(),
            branches, (long)b * cfg.Depth * (attn + mlp), routing);
    }

    /// <summary>
    /// forward_with_cfg as the official DyDiT: only x[:n] is used (fed twice), the inner call is the dynamic forward,
    /// channels 0..2 of both halves become u + s·(c − u). The routing returned is the inner call's (2n rows).
    /// </summary>
    public DyDitForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale)
    {
        using var combined = Trunk.CfgInput(x);
        var result = Forward(combined, t, y);
        Trunk.Guide(result.Output, cfgScale);
        return result;
    }

    /// <summary>
    /// Head and channel-group masks of every block: the routers see t_emb only, so they run once per distinct
    /// timestep of the batch and every sample with that timestep shares the decision. Head / group 0 is always on.
    /// </summary>
    private void DecideWidths(Tensor tEmb, ReadOnlySpan<long> t, DyDitRouting routing, MacCounter macs)
    {
        int b = routing.Batch, depth = routing.Depth, h = routing.Heads;
        if (routing.Complete)
        {
            Array.Fill(routing.AttnMasks, 1f);
            Array.Fill(routing.MlpMasks, 1f);
            Array.Fill(routing.TokenSelect, 1f);
            return;
        }
        var distinct = new List<long>();
        var first = new List<int>();
        var which = new int[b];
        for (int n = 0; n < b; n++)
        {
            int at = distinct.IndexOf(t[n]);
            if (at < 0)
            {
                distinct.Add(t[n]);
                first.Add(n);
                at = distinct.Count - 1;
            }
            which[n] = at;
        }
        using var unique = _backend.Empty(distinct.Count, Config.HiddenSize);
        _backend.GatherRows(tEmb, first.ToArray(), unique);
        for (int l = 0; l < depth; l++)
        {
            Route(blocks[l].attn_rate, routing.AttnLogits, routing.AttnMasks);
            Route(blocks[l].mlp_rate, routing.MlpLogits, routing.MlpMasks);

            void Route(DyDitRouter router, float[] logitsOut, float[] masksOut)
            {
                using var logits = router.router.Forward(unique, macs); // (U, H − 1)
                var host = logits.ToArray();
                for (int n = 0; n < b; n++)
                {
                    var row = host.AsSpan(which[n] * (h - 1), h - 1);
                    row.CopyTo(logitsOut.AsSpan((n * depth + l) * (h - 1), h - 1));
                    var mask = masksOut.AsSpan((n * depth + l) * h, h);
                    mask[0] = 1f;
                    for (int j = 0; j < h - 1; j++) mask[j + 1] = DyDitRouting.Decide(row[j]) ? 1f : 0f;
                }
            }
        }
    }

    public void Dispose()
    {
        Trunk?.Dispose();
        foreach (var block in blocks ?? []) block?.Dispose();
    }
}

/// <summary>
/// A DyDiT call's output (B, C_out, H, W) and its cost: <see cref="MultiplyAccumulates"/> executed (routers included),
/// <see cref="DenseMultiplyAccumulates"/> of a DiT of the same shape on the same batch, and the attention + MLP part
/// that routing scales, executed and dense (their ratio is loss.py's activate rate with this model's own per-block
/// costs). <see cref="Routing"/> holds the masks and logits. Disposing frees the output.
/// </summary>
public sealed record DyDitForwardResult(
    Tensor Output,
    long MultiplyAccumulates,
    long DenseMultiplyAccumulates,
    long AttentionMlpMultiplyAccumulates,
    long DenseAttentionMlpMultiplyAccumulates,
    DyDitRouting Routing) : IDisposable
{
    /// <summary>Executed over dense multiply-accumulates of the whole call.</summary>
    public double MacRatio => (double)MultiplyAccumulates / DenseMultiplyAccumulates;

    public void Dispose() => Output.Dispose();
}
