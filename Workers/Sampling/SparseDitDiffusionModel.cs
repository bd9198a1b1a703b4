using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary><see cref="SparseDit"/> as an <see cref="IDiffusionModel"/> (at the configured semantic size).</summary>
public sealed class SparseDitDiffusionModel(SparseDit network, IBackend backend) : IDiffusionModel
{
    public SparseDit Network { get; } = network ?? throw new ArgumentNullException(nameof(network));

    /// <summary>Loads a SparseDiT/FlexDiT checkpoint (state dict or training checkpoint, strict keys).</summary>
    public static SparseDitDiffusionModel Load(string checkpoint, SparseDitConfig config, IBackend backend)
        => new(SparseDit.Load(checkpoint, config, backend), backend);

    public string Name => "SparseDiT";

    public IBackend Backend { get; } = backend ?? throw new ArgumentNullException(nameof(backend));

    public int InChannels => Network.Config.InChannels;

    public int InputSize => Network.Config.InputSize;

    public int OutChannels => Network.Config.OutChannels;

    public bool LearnSigma => Network.Config.LearnSigma;

    public int NumClasses => Network.Config.NumClasses;

    public int? NullClass => Network.Config.NullClass;

    public ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y) => Network.Forward(x, t, y);

    public ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale)
        => Network.ForwardWithCfg(x, t, y, cfgScale);

    public void Dispose() => Network.Dispose();
}
