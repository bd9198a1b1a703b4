using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// DiT block with adaLN-Zero conditioning (DiT paper, Fig. 3):
/// (shift₁, scale₁, gate₁, shift₂, scale₂, gate₂) = adaLN(c);
/// x ← x + gate₁ · Attn(modulate(LN(x), shift₁, scale₁));
/// x ← x + gate₂ · MLP(modulate(LN(x), shift₂, scale₂)).
/// LN has no affine parameters and eps 1e-6. Keys under <c>blocks.{i}</c>: <c>attn.*</c>, <c>mlp.*</c>, <c>adaLN_modulation.1.*</c>.
/// </summary>
public sealed class DitBlock : IDisposable
{
    public const float NormEps = 1e-6f;

    private readonly IBackend _backend;

    public DitBlock(StateDictReader w, IBackend backend, string name, int hiddenSize, int heads, int mlpHidden)
    {
        _backend = backend;
        attn = new Attention(w, backend, name + ".attn", hiddenSize, heads);
        mlp = new Mlp(w, backend, name + ".mlp", hiddenSize, mlpHidden);
        adaLN_modulation = new AdaLnModulation(w, backend, name + ".adaLN_modulation", hiddenSize, chunks: 6);
    }

    public Attention attn { get; }

    public Mlp mlp { get; }

    public AdaLnModulation adaLN_modulation { get; }

    // x: (B, T, D) updated in place; c: (B, D); attnBias: optional additive attention-score bias (see Attention)
    public void Forward(Tensor x, Tensor c, MacCounter? macs, Tensor? attnBias = null)
    {
        var m = adaLN_modulation.Forward(c, macs);
        try
        {
            // chunk order of the official code
            Tensor shift_msa = m[0], scale_msa = m[1], gate_msa = m[2], shift_mlp = m[3], scale_mlp = m[4], gate_mlp = m[5];
            using (var h = AdaLnNorm.NormModulate(_backend, x, shift_msa, scale_msa))
            using (var a = attn.Forward(h, macs, attnBias))
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
