using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>torch.nn.Linear: y = x·Wᵀ + b over the last dimension. Keys <c>{name}.weight</c> (out, in) and <c>{name}.bias</c> (out).</summary>
public sealed class Linear : IDisposable
{
    private readonly IBackend _backend;

    public Linear(IBackend backend, float[] weight, float[] bias, int inFeatures, int outFeatures)
    {
        _backend = backend;
        In = inFeatures;
        Out = outFeatures;
        this.weight = backend.FromHost(weight, outFeatures, inFeatures);
        this.bias = backend.FromHost(bias, outFeatures);
    }

    public static Linear Load(StateDictReader w, IBackend backend, string name, int inFeatures, int outFeatures)
        => new(backend, w.Read(name + ".weight", outFeatures, inFeatures), w.Read(name + ".bias", outFeatures), inFeatures, outFeatures);

    public int In { get; }

    public int Out { get; }

    public Tensor weight { get; } // (out, in)

    public Tensor bias { get; }   // (out)

    // x: (…, in) → y: (…, out)
    public Tensor Forward(Tensor x, MacCounter? macs)
    {
        if (x.Rank == 0 || x.Dim(-1) != In) throw new ArgumentException($"Linear({In} → {Out}) got {x}");
        int rows = checked((int)(x.Length / In));
        using var x2 = x.Reshape(rows, In);
        using var y2 = _backend.Empty(rows, Out);
        _backend.Gemm(x2, false, weight, true, y2);
        _backend.BiasActivation(y2, bias, relu: false, y2);
        macs?.Add((long)rows * In * Out);
        var shape = x.Shape.ToArray();
        shape[^1] = Out;
        return y2.Reshape(shape);
    }

    public void Dispose()
    {
        weight.Dispose();
        bias.Dispose();
    }
}
