using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>modulate(LayerNorm(x), shift, scale) as every adaLN block computes it (LayerNorm without affine, eps 1e-6).</summary>
internal static class AdaLnNorm
{
    // x: (B, N, D), shift/scale: (B, D) → new (B, N, D)
    public static Tensor NormModulate(IBackend backend, Tensor x, Tensor shift, Tensor scale)
    {
        var h = backend.Empty(x.Dim(0), x.Dim(1), x.Dim(2));
        backend.LayerNorm(x, DitBlock.NormEps, h);
        backend.Modulate(h, shift, scale, h);
        return h;
    }

    /// <summary>x ← x + gate · MLP(modulate(LN(x), shift, scale)), the second half of DiT's block and of every FlexDiT block.</summary>
    public static void MlpResidual(IBackend backend, Mlp mlp, Tensor x, Tensor shift, Tensor scale, Tensor gate, MacCounter? macs)
    {
        using var h = NormModulate(backend, x, shift, scale);
        using var f = mlp.Forward(h, macs);
        backend.GatedAdd(x, gate, f, x);
    }
}
