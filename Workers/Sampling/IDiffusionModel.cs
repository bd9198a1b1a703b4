using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// A class-conditional denoiser as the samplers call it: <c>model(x, t, y)</c> and DiT's <c>forward_with_cfg</c>.
/// Implemented by DiT (<see cref="DitDiffusionModel"/>) and the DyDiT / SparseDiT networks. Tensors are NCHW on
/// <see cref="Backend"/>; the shape facts (channels, size, classes, null class) are the network's configuration.
/// </summary>
public interface IDiffusionModel : ILatentNetworkConfig, IDisposable
{
    /// <summary>A short name for messages ("DiT", "DyDiT", ...).</summary>
    string Name { get; }

    /// <summary>The backend the tensors given to and returned by the model live on.</summary>
    IBackend Backend { get; }

    /// <summary>
    /// <c>model(x, t, y)</c>: x (B, C, H, W), t (B) original timesteps, y (B) labels → (B, OutChannels, H, W) and the
    /// multiply-accumulates executed. The caller disposes the result.
    /// </summary>
    ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y);

    /// <summary>
    /// <c>forward_with_cfg(x, t, y, scale)</c> on the doubled batch: x (2n, C, H, W) of which only x[:n] is used, y =
    /// labels then n null labels. The first <see cref="Dit.GuidedChannels"/> channels of both halves become
    /// u + s·(c − u); the rest keep each half's own values. The caller disposes the result.
    /// </summary>
    ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale);
}
