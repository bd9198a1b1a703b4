using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// FlexDiT's PoolingAttention at inference. The official module softmaxes an all-ones N×N score matrix, so every
/// token receives the same uniform average of v = Linear(D, D)(x), followed by proj. Since v is affine, the average
/// of v over the tokens is v of the token average: this computes proj(v(mean_t x)) once per sample, a (B, D) result
/// that the caller broadcasts over the tokens. Keys <c>{name}.v.*</c>, <c>{name}.proj.*</c>.
/// </summary>
public sealed class PoolingAttention : IDisposable
{
    private readonly IBackend _backend;

    public PoolingAttention(StateDictReader w, IBackend backend, string name, int hiddenSize)
    {
        _backend = backend;
        v = Linear.Load(w, backend, name + ".v", hiddenSize, hiddenSize);
        proj = Linear.Load(w, backend, name + ".proj", hiddenSize, hiddenSize);
    }

    public Linear v { get; }

    public Linear proj { get; }

    // x: (B, T, D) → (B, D), the output shared by all T tokens
    public Tensor Forward(Tensor x, MacCounter? macs)
    {
        int b = x.Dim(0), d = x.Dim(2);
        using var mean = _backend.Empty(b, d);
        using (var grid = x.Reshape(b, x.Dim(1), 1, d))
            _backend.GlobalAvgPool(grid, mean);
        using var values = v.Forward(mean, macs);
        return proj.Forward(values, macs);
    }

    public void Dispose()
    {
        v.Dispose();
        proj.Dispose();
    }
}
