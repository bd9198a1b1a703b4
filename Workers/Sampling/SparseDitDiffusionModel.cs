using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary><see cref="SparseDit"/> as an <see cref="IDiffusionModel"/> (at the configured semantic size).</summary>
public sealed class SparseDitDiffusionModel(SparseDit network, IBackend backend)
    : NetworkDiffusionModel<SparseDit>(network, network?.Config!, backend, ownsNetwork: true)
{
    /// <summary>Loads a SparseDiT/FlexDiT checkpoint (state dict or training checkpoint, strict keys).</summary>
    public static SparseDitDiffusionModel Load(string checkpoint, SparseDitConfig config, IBackend backend)
        => new(SparseDit.Load(checkpoint, config, backend), backend);

    public override string Name => "SparseDiT";

    public override ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y) => Network.Forward(x, t, y);

    public override ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale)
        => Network.ForwardWithCfg(x, t, y, cfgScale);
}
