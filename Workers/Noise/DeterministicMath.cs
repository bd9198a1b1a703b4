namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// float64 log and sin/cos built only from IEEE-exact operations (+, −, ×, ÷, sqrt, no fused multiply-add),
/// so that the per-sample generator gives the same bits on every OS, C library and CPU — unlike
/// <see cref="Math.Log(double)"/>, which calls the platform's libm. Accuracy is a few ulps of a double;
/// the generator only keeps float32 results.
/// </summary>
public static class DeterministicMath
{
    private const double Ln2Hi = 6.93147180369123816490e-01; // ln 2 with trailing zero bits: e·Ln2Hi is exact
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double Sqrt2 = 1.4142135623730951;
    private const double QuarterPi = 0.78539816339744830962;

    /// <summary>Natural log of a positive normal double.</summary>
    public static double Log(double x)
    {
        if (!(x > 0) || double.IsInfinity(x) || x < double.Epsilon * (1L << 52))
            throw new ArgumentOutOfRangeException(nameof(x), x, "only positive normal numbers");
        long bits = BitConverter.DoubleToInt64Bits(x);
        int e = (int)((bits >> 52) & 0x7FF) - 1023;
        double m = BitConverter.Int64BitsToDouble((bits & 0x000F_FFFF_FFFF_FFFFL) | 0x3FF0_0000_0000_0000L); // [1, 2)
        if (m > Sqrt2)
        {
            m *= 0.5;
            e += 1;
        }
        // log m = log((1+s)/(1−s)) = 2(s + s³/3 + s⁵/5 + …), |s| ≤ 0.1716
        double s = (m - 1.0) / (m + 1.0);
        double s2 = s * s;
        double p = 2.0 / 21;
        p = p * s2 + 2.0 / 19;
        p = p * s2 + 2.0 / 17;
        p = p * s2 + 2.0 / 15;
        p = p * s2 + 2.0 / 13;
        p = p * s2 + 2.0 / 11;
        p = p * s2 + 2.0 / 9;
        p = p * s2 + 2.0 / 7;
        p = p * s2 + 2.0 / 5;
        p = p * s2 + 2.0 / 3;
        double logM = 2.0 * s + s * s2 * p;
        return e * Ln2Hi + (logM + e * Ln2Lo);
    }

    /// <summary>sin(2πu) and cos(2πu) for u in [0, 1), reduced exactly by octant.</summary>
    public static void SinCos2Pi(double u, out double sin, out double cos)
    {
        if (!(u >= 0 && u < 1)) throw new ArgumentOutOfRangeException(nameof(u), u, "needs 0 <= u < 1");
        double v = u * 8.0; // exact
        int k = (int)v;
        double f = v - k;   // exact, in [0, 1)
        if ((k & 1) != 0) f = 1.0 - f; // exact: f has at most 50 significant bits below 1
        double a = f * QuarterPi; // in [0, π/4]
        double a2 = a * a;
        double sp = 1.0 / 355687428096000; // 1/17!
        sp = sp * a2 - 1.0 / 1307674368000;
        sp = sp * a2 + 1.0 / 6227020800;
        sp = sp * a2 - 1.0 / 39916800;
        sp = sp * a2 + 1.0 / 362880;
        sp = sp * a2 - 1.0 / 5040;
        sp = sp * a2 + 1.0 / 120;
        sp = sp * a2 - 1.0 / 6;
        double sa = a + a * a2 * sp;
        double cp = 1.0 / 6402373705728000; // 1/18!
        cp = cp * a2 - 1.0 / 20922789888000;
        cp = cp * a2 + 1.0 / 87178291200;
        cp = cp * a2 - 1.0 / 479001600;
        cp = cp * a2 + 1.0 / 3628800;
        cp = cp * a2 - 1.0 / 40320;
        cp = cp * a2 + 1.0 / 720;
        cp = cp * a2 - 1.0 / 24;
        cp = cp * a2 + 0.5;
        double ca = 1.0 - a2 * cp;
        switch (k)
        {
            case 0: sin = sa; cos = ca; break;
            case 1: sin = ca; cos = sa; break;
            case 2: sin = ca; cos = -sa; break;
            case 3: sin = sa; cos = -ca; break;
            case 4: sin = -sa; cos = -ca; break;
            case 5: sin = -ca; cos = -sa; break;
            case 6: sin = -ca; cos = sa; break;
            default: sin = -sa; cos = ca; break;
        }
    }
}
