using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// timm's Attention(D, num_heads, qkv_bias=True) at inference: qkv = Linear(D, 3D) → per-head
/// softmax(q·kᵀ/√hd)·v → proj = Linear(D, D). Keys <c>{name}.qkv.*</c>, <c>{name}.proj.*</c>.
/// </summary>
public sealed class Attention : IDisposable
{
    private readonly IBackend _backend;

    public Attention(StateDictReader w, IBackend backend, string name, int hiddenSize, int heads)
    {
        _backend = backend;
        Heads = heads;
        qkv = Linear.Load(w, backend, name + ".qkv", hiddenSize, 3 * hiddenSize);
        proj = Linear.Load(w, backend, name + ".proj", hiddenSize, hiddenSize);
    }

    public int Heads { get; }

    public Linear qkv { get; }

    public Linear proj { get; }

    // x: (B, T, D) → (B, T, D); attnBias (heads or 1, T, T), when given, is added to the scaled scores (timm's attn_mask)
    public Tensor Forward(Tensor x, MacCounter? macs, Tensor? attnBias = null)
    {
        int b = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        using var heads = _backend.Empty(b, t, d);
        using (var q_k_v = qkv.Forward(x, macs))        // (B, T, 3D)
        {
            if (attnBias == null) _backend.MultiHeadAttention(q_k_v, Heads, heads);
            else _backend.ScaledDotProductAttention(q_k_v, 0, q_k_v, d, 2 * d, Heads, attnBias, heads);
        }
        macs?.Add(2L * b * t * t * d);                   // q·kᵀ and p·v: T·T·hd each, per head
        return proj.Forward(heads, macs);
    }

    public void Dispose()
    {
        qkv.Dispose();
        proj.Dispose();
    }
}
