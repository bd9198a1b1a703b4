using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// A class-conditional denoiser as the samplers call it: <c>model(x, t, y)</c> and DiT's <c>forward_with_cfg</c>.
/// Implemented by DiT (<see cref="DitDiffusionModel"/>) and the DyDiT / SparseDiT networks. Tensors are NCHW on
/// <see cref="Backend"/>.
/// </summary>
public interface IDiffusionModel : IDisposable
{
    /// <summary>A short name for messages ("DiT", "DyDiT", ...).</summary>
    string Name { get; }

    /// <summary>The backend the tensors given to and returned by the model live on.</summary>
    IBackend Backend { get; }

    /// <summary>Latent channels C of x.</summary>
    int InChannels { get; }

    /// <summary>Latent height and width (image size / 8 for the sd-vae).</summary>
    int InputSize { get; }

    /// <summary>Channels of the output: 2·C with learn_sigma (ε, then the variance interpolation v), else C.</summary>
    int OutChannels { get; }

    /// <summary>Whether the output carries the learned variance (the DiT samplers require it).</summary>
    bool LearnSigma { get; }

    /// <summary>Real classes: labels are drawn from [0, NumClasses).</summary>
    int NumClasses { get; }

    /// <summary>The label the unconditional half of a guidance batch gets (num_classes), or null if the model has no null class.</summary>
    int? NullClass { get; }

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
