using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// FlexDiT's CrossDiTBlock (a dumbbell's token-merge block): the pooled tokens x attend to the full-resolution tokens y,
/// both normalised and modulated with the same (shift₁, scale₁):
/// x ← x + gate₁ · CrossAttn(modulate(LN(x)), modulate(LN(y))); x ← x + gate₂ · MLP(modulate(LN(x), shift₂, scale₂)).
/// Keys <c>{name}.attn.{q,kv,proj}.*</c>, <c>{name}.mlp.*</c>, <c>{name}.adaLN_modulation.1.*</c>.
/// </summary>
public sealed class CrossDitBlock : IDisposable
{
    private readonly IBackend _backend;

    public CrossDitBlock(StateDictReader w, IBackend backend, string name, int hiddenSize, int heads, int mlpHidden)
    {
        _backend = backend;
        attn = new CrossAttention(w, backend, name + ".attn", hiddenSize, heads);
        mlp = new Mlp(w, backend, name + ".mlp", hiddenSize, mlpHidden);
        adaLN_modulation = new AdaLnModulation(w, backend, name + ".adaLN_modulation", hiddenSize, chunks: 6);
    }

    public CrossAttention attn { get; }

    public Mlp mlp { get; }

    public AdaLnModulation adaLN_modulation { get; }

    // x: (B, N, D) updated in place; y: (B, M, D) read only; c: (B, D)
    public void Forward(Tensor x, Tensor y, Tensor c, MacCounter? macs)
    {
        var m = adaLN_modulation.Forward(c, macs);
        try
        {
            Tensor shift_msa = m[0], scale_msa = m[1], gate_msa = m[2], shift_mlp = m[3], scale_mlp = m[4], gate_mlp = m[5];
            using (var hx = AdaLnNorm.NormModulate(_backend, x, shift_msa, scale_msa))
            using (var hy = AdaLnNorm.NormModulate(_backend, y, shift_msa, scale_msa))
            using (var a = attn.Forward(hx, hy, macs))
                _backend.GatedAdd(x, gate_msa, a, x);
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
