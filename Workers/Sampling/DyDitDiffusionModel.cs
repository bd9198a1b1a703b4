using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// <see cref="DyDit"/> as an <see cref="IDiffusionModel"/>: routed calls (skipped heads, channel groups and tokens); the
/// MACs reported are the ones executed.
/// </summary>
public sealed class DyDitDiffusionModel(DyDit network, IBackend backend)
    : NetworkDiffusionModel<DyDit>(network, network?.Config!, backend, ownsNetwork: true)
{
    /// <summary>Loads a DyDiT checkpoint (state dict or training checkpoint with ema, strict keys incl. the routers).</summary>
    public static DyDitDiffusionModel Load(string checkpoint, DitConfig config, IBackend backend)
        => new(DyDit.Load(checkpoint, config, backend), backend);

    public override string Name => "DyDiT";

    public override ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y) => Plain(Network.Forward(x, t, y));

    public override ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale)
        => Plain(Network.ForwardWithCfg(x, t, y, cfgScale));

    private static ForwardResult Plain(DyDitForwardResult r)
    {
        var (heads, groups, tokens) = r.Routing.MaskMeans();
        return new(r.Output, r.MultiplyAccumulates, r.DenseMultiplyAccumulates, new RoutingActivity(heads, groups, tokens));
    }
}
