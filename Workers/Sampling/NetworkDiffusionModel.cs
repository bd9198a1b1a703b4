using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// The part of every network-backed <see cref="IDiffusionModel"/> that is the same for DiT, DyDiT and SparseDiT: the
/// shape facts come from the network's configuration; disposing disposes the network when it is owned.
/// </summary>
public abstract class NetworkDiffusionModel<TNetwork>(TNetwork network, ILatentNetworkConfig config, IBackend backend, bool ownsNetwork)
    : IDiffusionModel where TNetwork : class, IDisposable
{
    public TNetwork Network { get; } = network ?? throw new ArgumentNullException(nameof(network));

    public IBackend Backend { get; } = backend ?? throw new ArgumentNullException(nameof(backend));

    public abstract string Name { get; }

    public int InChannels => config.InChannels;

    public int InputSize => config.InputSize;

    public int OutChannels => config.OutChannels;

    public bool LearnSigma => config.LearnSigma;

    public int NumClasses => config.NumClasses;

    public int? NullClass => config.NullClass;

    public abstract ForwardResult Forward(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y);

    public abstract ForwardResult ForwardWithCfg(Tensor x, ReadOnlySpan<long> t, ReadOnlySpan<long> y, float cfgScale);

    public void Dispose()
    {
        if (ownsNetwork) Network.Dispose();
        GC.SuppressFinalize(this);
    }
}
