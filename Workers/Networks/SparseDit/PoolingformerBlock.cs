using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// FlexDiT's PoolingformerBlock: a DiT block (adaLN-Zero, same chunk order) whose attention is
/// <see cref="PoolingAttention"/> — x ← x + gate₁ · proj(v(mean of modulate(LN(x)))) broadcast over tokens, then the
/// gated MLP. Keys <c>{name}.attn.{v,proj}.*</c>, <c>{name}.mlp.*</c>, <c>{name}.adaLN_modulation.1.*</c>.
/// </summary>
public sealed class PoolingformerBlock : IDisposable
{
    private readonly IBackend _backend;

    public PoolingformerBlock(StateDictReader w, IBackend backend, string name, int hiddenSize, int mlpHidden)
    {
        _backend = backend;
        attn = new PoolingAttention(w, backend, name + ".attn", hiddenSize);
        mlp = new Mlp(w, backend, name + ".mlp", hiddenSize, mlpHidden);
        adaLN_modulation = new AdaLnModulation(w, backend, name + ".adaLN_modulation", hiddenSize, chunks: 6);
    }

    public PoolingAttention attn { get; }

    public Mlp mlp { get; }

    public AdaLnModulation adaLN_modulation { get; }

    // x: (B, T, D) updated in place; c: (B, D)
    public void Forward(Tensor x, Tensor c, MacCounter? macs)
    {
        var m = adaLN_modulation.Forward(c, macs);
        try
        {
            Tensor shift_msa = m[0], scale_msa = m[1], gate_msa = m[2], shift_mlp = m[3], scale_mlp = m[4], gate_mlp = m[5];
            using (var h = AdaLnNorm.NormModulate(_backend, x, shift_msa, scale_msa))
            using (var a = attn.Forward(h, macs)) // (B, D), the same for every token
                _backend.GatedAddBroadcast(x, gate_msa, a, x);
            AdaLnNorm.MlpResidual(_backend, mlp, x, shift_mlp, scale_mlp, gate_mlp, macs);
        }
        finally
        {
            foreach (var t in m) t.Dispose();
        }
    }

    public void Dispose()
    {
        attn.Dispose();
        mlp.Dispose();
        adaLN_modulation.Dispose();
    }
}
