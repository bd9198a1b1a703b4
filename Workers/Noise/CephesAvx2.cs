using System.Runtime.CompilerServices;

namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// One lane of the float32 Cephes-style <c>log</c> and <c>sincos</c> that PyTorch's AVX2 <c>randn</c> kernel
/// uses (ATen's <c>avx_mathfun.h</c>), written out per element so that every rounding happens where the
/// compiled x86-64 kernel rounds: the Horner steps are fused multiply-adds, and so are the two places the
/// compiler contracted (noted below). Only arguments that randn produces are supported: log on (0, 1],
/// sincos on [0, 2π].
/// </summary>
internal static class CephesAvx2
{
    private const float SqrtHalf = (float)0.707106781186547524;
    private const float LogP0 = (float)7.0376836292E-2;
    private const float LogP1 = (float)-1.1514610310E-1;
    private const float LogP2 = (float)1.1676998740E-1;
    private const float LogP3 = (float)-1.2420140846E-1;
    private const float LogP4 = (float)1.4249322787E-1;
    private const float LogP5 = (float)-1.6668057665E-1;
    private const float LogP6 = (float)2.0000714765E-1;
    private const float LogP7 = (float)-2.4999993993E-1;
    private const float LogP8 = (float)3.3333331174E-1;
    private const float LogQ1 = (float)-2.12194440e-4;
    private const float LogQ2 = (float)0.693359375;

    private const float MinusDp1 = (float)-0.78515625;
    private const float MinusDp2 = (float)-2.4187564849853515625e-4;
    private const float MinusDp3 = (float)-3.77489497744594108e-8;
    private const float SinP0 = (float)-1.9515295891E-4;
    private const float SinP1 = (float)8.3321608736E-3;
    private const float SinP2 = (float)-1.6666654611E-1;
    private const float CosP0 = (float)2.443315711809948E-005;
    private const float CosP1 = (float)-1.388731625493765E-003;
    private const float CosP2 = (float)4.166664568298827E-002;
    private const float FourOverPi = (float)1.27323954473516;

    private const float MinNormPos = 1.17549435e-38f; // bit pattern 0x00800000

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);

    /// <summary>Natural log of x in (0, 1] as <c>log256_ps</c> computes it.</summary>
    public static float Log(float x)
    {
        x = MathF.Max(x, MinNormPos);
        int bits = BitConverter.SingleToInt32Bits(x);
        int exponent = (int)((uint)bits >> 23) - 0x7f;
        // mantissa scaled into [0.5, 1)
        x = BitConverter.Int32BitsToSingle((bits & ~0x7f800000) | BitConverter.SingleToInt32Bits(0.5f));
        float e = (float)exponent;
        e += 1f;
        bool below = x < SqrtHalf;
        float tmp = below ? x : 0f;
        x -= 1f;
        e -= below ? 1f : 0f;
        x += tmp;

        float z = x * x;
        float y = LogP0;
        y = Fma(y, x, LogP1);
        y = Fma(y, x, LogP2);
        y = Fma(y, x, LogP3);
        y = Fma(y, x, LogP4);
        y = Fma(y, x, LogP5);
        y = Fma(y, x, LogP6);
        y = Fma(y, x, LogP7);
        y = Fma(y, x, LogP8);
        y *= x;
        // contracted: (y * z) + e * q1 with the product y*z unrounded
        y = Fma(y, z, e * LogQ1);
        y -= z * 0.5f;
        x += y;
        x += e * LogQ2;
        return x;
    }

    /// <summary>sin and cos of x in [0, 2π] as <c>sincos256_ps</c> computes them.</summary>
    public static void SinCos(float x, out float sin, out float cos)
    {
        int signSin = BitConverter.SingleToInt32Bits(x) & unchecked((int)0x80000000);
        x = MathF.Abs(x);
        float scaled = x * FourOverPi;
        int j = (int)scaled; // truncation, as cvttps
        j = (j + 1) & ~1;
        float y = (float)j;
        int swapSignSin = (j & 4) << 29;
        bool firstPoly = (j & 2) == 0;

        // extended-precision reduction x - j·π/4 in three parts
        x += y * MinusDp1;
        x += y * MinusDp2;
        x += y * MinusDp3;

        int signCos = (~(j - 2) & 4) << 29;
        signSin ^= swapSignSin;

        float z = x * x;
        float c = CosP0;
        c = Fma(c, z, CosP1);
        c = Fma(c, z, CosP2);
        c *= z;
        // contracted: (c * z) - z * 0.5 with the product c*z unrounded
        c = Fma(c, z, -(z * 0.5f));
        c += 1f;

        float s = SinP0;
        s = Fma(s, z, SinP1);
        s = Fma(s, z, SinP2);
        s *= z;
        s = Fma(s, x, x);

        float sinValue = firstPoly ? s : c;
        float cosValue = firstPoly ? c : s;
        sin = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(sinValue) ^ signSin);
        cos = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(cosValue) ^ signCos);
    }
}
