namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// The float32 exp of PyTorch's CPU kernels when built without MKL (Debian's python3-torch, which produced the
/// fixtures): ATen's vectorised exp calls SLEEF's 1-ulp expf (Sleef_expf8_u10 on AVX2, the same steps on AVX-512).
/// It is not correctly rounded, and DiT's sinusoidal timestep features notice: at t = 999 one ulp of a frequency
/// moves cos/sin by up to 6e-5. Reproducing the steps bit for bit gives the reference's frequencies exactly.
/// Steps (facts from SLEEF's src/libm/sleefsimdsp.c, xexpf, and src/common/misc.h): q = round-to-even(d·log2 e),
/// s = d − q·ln2 with ln2 split in two float parts (both subtractions fused), a degree-5 polynomial in Horner form
/// with fused multiply-adds, 1 + s + s²·p, then scaling by 2^q in two halves; d &lt; −104 gives 0, d &gt; 100 gives +∞.
/// (A torch built with MKL uses VML's vsExp instead, whose last bit may differ again.)
/// </summary>
public static class TorchCpuExp
{
    private const float Log2E = 1.442695040888963407359924681001892137426645954152985934135449406931f;
    private const float Ln2High = 0.693145751953125f;          // upper bits of ln 2, exact in float
    private const float Ln2Low = 1.428606765330187045e-06f;    // ln 2 − Ln2High

    // minimax coefficients of (e^s − 1 − s) / s², highest degree first
    private const float C5 = 0.000198527617612853646278381f;
    private const float C4 = 0.00139304355252534151077271f;
    private const float C3 = 0.00833336077630519866943359f;
    private const float C2 = 0.0416664853692054748535156f;
    private const float C1 = 0.166666671633720397949219f;
    private const float C0 = 0.5f;

    public static float Exp(float d)
    {
        if (float.IsNaN(d)) return d;
        if (d > 100f) return float.PositiveInfinity;
        if (d < -104f) return 0f;

        int q = (int)MathF.Round(d * Log2E, MidpointRounding.ToEven);
        float s = MathF.FusedMultiplyAdd(q, -Ln2High, d);
        s = MathF.FusedMultiplyAdd(q, -Ln2Low, s);

        float p = C5;
        p = MathF.FusedMultiplyAdd(p, s, C4);
        p = MathF.FusedMultiplyAdd(p, s, C3);
        p = MathF.FusedMultiplyAdd(p, s, C2);
        p = MathF.FusedMultiplyAdd(p, s, C1);
        p = MathF.FusedMultiplyAdd(p, s, C0);
        float u = 1f + MathF.FusedMultiplyAdd(s * s, p, s);

        int half = q >> 1; // arithmetic shift, as the vector code does
        return u * PowerOfTwo(half) * PowerOfTwo(q - half);
    }

    // 2^e for −126 ≤ e ≤ 127, built from its exponent bits
    private static float PowerOfTwo(int e) => BitConverter.Int32BitsToSingle((e + 127) << 23);
}
