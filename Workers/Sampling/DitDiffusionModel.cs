using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary><see cref="Dit"/> as an <see cref="IDiffusionModel"/>.</summary>
public sealed class DitDiffusionModel(Dit network, IBackend backend, bool ownsNetwork = true)
    : NetworkDiffusionModel<Dit>(network, network?.Config!, backend, ownsNetwork)
{
    /// <summary>Loads a DiT checkpoint (<see cref="Dit.Load"/>: state dict or training checkpoint, strict keys).</summary>
    public static DitDiffusionModel Load(string checkpoint, DitConfig config, IBackend backend)
        => new(Dit.Load(checkpoint, config, backend), backend);

    public override string Name => "DiT";

    public override ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y) => Network.Forward(x, t, y);

    public override ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale)
        => Network.ForwardWithCfg(x, t, y, cfgScale);
}
