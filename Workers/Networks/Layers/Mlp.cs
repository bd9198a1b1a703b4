using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>timm's Mlp as DiT builds it: fc1 = Linear(D, H) → GELU (tanh approximation) → fc2 = Linear(H, D). Keys <c>{name}.fc1.*</c>, <c>{name}.fc2.*</c>.</summary>
public sealed class Mlp : IDisposable
{
    private readonly IBackend _backend;

    public Mlp(StateDictReader w, IBackend backend, string name, int hiddenSize, int mlpHidden)
    {
        _backend = backend;
        fc1 = Linear.Load(w, backend, name + ".fc1", hiddenSize, mlpHidden);
        fc2 = Linear.Load(w, backend, name + ".fc2", mlpHidden, hiddenSize);
    }

    public Linear fc1 { get; }

    public Linear fc2 { get; }

    // x: (B, T, D) → (B, T, D)
    public Tensor Forward(Tensor x, MacCounter? macs)
    {
        using var h = fc1.Forward(x, macs);
        _backend.GeluTanh(h, h);
        return fc2.Forward(h, macs);
    }

    public void Dispose()
    {
        fc1.Dispose();
        fc2.Dispose();
    }
}
