using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary><see cref="Dit"/> as an <see cref="IDiffusionModel"/>. Disposing disposes the network when it is owned.</summary>
public sealed class DitDiffusionModel(Dit network, IBackend backend, bool ownsNetwork = true) : IDiffusionModel
{
    public Dit Network { get; } = network ?? throw new ArgumentNullException(nameof(network));

    /// <summary>Loads a DiT checkpoint (<see cref="Dit.Load"/>: state dict or training checkpoint, strict keys).</summary>
    public static DitDiffusionModel Load(string checkpoint, DitConfig config, IBackend backend)
        => new(Dit.Load(checkpoint, config, backend), backend);

    public string Name => "DiT";

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

    public void Dispose()
    {
        if (ownsNetwork) Network.Dispose();
    }
}
