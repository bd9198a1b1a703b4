using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// FlexDiT's CrossAttention at inference: queries from one token set, keys and values from another.
/// q = Linear(D, D)(x), kv = Linear(D, 2D)(y) with rows [K; V] (each split into heads like timm's qkv), per head
/// softmax(q·kᵀ/√hd)·v, then proj = Linear(D, D). Keys <c>{name}.q.*</c>, <c>{name}.kv.*</c>, <c>{name}.proj.*</c>.
/// </summary>
public sealed class CrossAttention : IDisposable
{
    private readonly IBackend _backend;

    public CrossAttention(StateDictReader w, IBackend backend, string name, int hiddenSize, int heads)
    {
        _backend = backend;
        Heads = heads;
        q = Linear.Load(w, backend, name + ".q", hiddenSize, hiddenSize);
        kv = Linear.Load(w, backend, name + ".kv", hiddenSize, 2 * hiddenSize);
        proj = Linear.Load(w, backend, name + ".proj", hiddenSize, hiddenSize);
    }

    public int Heads { get; }

    public Linear q { get; }

    public Linear kv { get; }

    public Linear proj { get; }

    // x: (B, N, D) queries, y: (B, M, D) keys/values → (B, N, D)
    public Tensor Forward(Tensor x, Tensor y, MacCounter? macs)
    {
        int b = x.Dim(0), n = x.Dim(1), d = x.Dim(2), m = y.Dim(1);
        if (y.Rank != 3 || y.Dim(0) != b || y.Dim(2) != d) throw new ArgumentException($"CrossAttention: queries {x} and keys/values {y} do not match");
        using var heads = _backend.Empty(b, n, d);
        using (var queries = q.Forward(x, macs))     // (B, N, D)
        using (var keysValues = kv.Forward(y, macs)) // (B, M, 2D): K then V
            _backend.ScaledDotProductAttention(queries, 0, keysValues, 0, d, Heads, null, heads);
        macs?.Add(2L * b * n * m * d);                 // q·kᵀ and p·v: N·M·hd each, per head
        return proj.Forward(heads, macs);
    }

    public void Dispose()
    {
        q.Dispose();
        kv.Dispose();
        proj.Dispose();
    }
}
