using ILGPU;

namespace DyDiT.Eval.Engine.Backends.Cuda;

/// <summary>
/// exp and tanh for kernels, written out in float32 arithmetic (no math library): ILGPU's PTX backend maps MathF.Exp and
/// MathF.Tanh to the hardware approximations (ex2.approx, tanh.approx, ~2⁻¹¹ relative error for tanh) unless NVIDIA's
/// libdevice is installed, which would miss the fixtures' 1e-5 tolerances. These are within 2 ulp of the correctly
/// rounded result over the ranges the networks use, and give the same bits on ILGPU's CPU accelerator and on a GPU.
/// </summary>
internal static class DeviceMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693145751953125f;        // ln 2 split: the high part has 16 significant bits,
    private const float Ln2Lo = 1.42860682030941723212e-6f; // so k·Ln2Hi is exact for |k| < 256

    // exp(x) = 2^k · e^r with k = round(x / ln 2), r = x − k·ln 2 in [−ln2/2, ln2/2] (Cody–Waite), e^r by its Taylor
    // polynomial to degree 7 (truncation < 2e-9 relative there), 2^k by building the float's exponent bits.
    public static float Exp(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x > 88.72283f) return float.PositiveInfinity;
        if (x < -87.33654f) return 0f;        // below the smallest normal float: flushed to zero
        float kf = XRound(x * Log2E);
        float r = (x - kf * Ln2Hi) - kf * Ln2Lo;
        float p = 1f / 5040f;
        p = p * r + 1f / 720f;
        p = p * r + 1f / 120f;
        p = p * r + 1f / 24f;
        p = p * r + 1f / 6f;
        p = p * r + 0.5f;
        p = p * r + 1f;
        p = p * r + 1f;
        int k = (int)kf;
        // 2^k as a float for k in [−126, 127]; at k = 128 (x just under the overflow bound) scale in two steps
        if (k > 127) return p * 2f * Interop.IntAsFloat((uint)((k - 1 + 127) << 23));
        return p * Interop.IntAsFloat((uint)((k + 127) << 23));
    }

    // tanh(x) = sign(x) · (1 − 2 / (e^{2|x|} + 1)); |x| ≥ 9 rounds to ±1 in float32; for |x| < 2⁻¹² tanh(x) = x to float precision
    public static float Tanh(float x)
    {
        if (float.IsNaN(x)) return x;
        float a = x < 0 ? -x : x;
        float t;
        if (a >= 9f) t = 1f;
        else if (a < 2.44140625e-4f) t = a;
        else if (a < 0.3f)
        {
            // small |x|: the odd Taylor series avoids the cancellation in 1 − 2/(e^{2x}+1) (the first term left out, 1382/155925·|x|¹¹, is < 6e-8 relative below 0.3)
            float s = a * a;
            float p = -17f / 315f;
            p = p * s + 2f / 15f;
            p = p * s - 1f / 3f;
            p = p * s;
            float q = 62f / 2835f * s * s * s * s;
            t = a + a * (p + q);
        }
        else t = 1f - 2f / (Exp(2f * a) + 1f);
        return x < 0 ? -t : t;
    }

    // round half away from zero is fine for the reduction (r stays within ±ln2/2 + ulp)
    private static float XRound(float v) => v >= 0 ? (float)(int)(v + 0.5f) : -(float)(int)(-v + 0.5f);
}
