using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>The arithmetic a distance block is evaluated in: ADM's fp16 graph, or its float32 redo.</summary>
internal enum DistancePrecision { Fp16, Float32 }

/// <summary>
/// ADM's squared distance <c>max((‖u‖² − 2·u·v) + ‖v‖², 0)</c> with every rounding of its TensorFlow graph reproduced:
/// features rounded to the block's precision P; each square rounded to P; the row sum and the dot product
/// accumulated exactly and rounded once to P; then <c>2·m</c>, <c>‖u‖² − 2m</c> and <c>(…) + ‖v‖²</c> each rounded to
/// P, in that order; NaN becomes 0 through <c>maximum</c>. Values are carried as float32 (every fp16 value is one).
/// </summary>
internal static class DistanceArithmetic
{
    /// <summary>Largest finite fp16 value and the first value that rounds to infinity.</summary>
    public const double HalfMax = 65504.0, HalfOverflow = 65520.0;

    /// <summary>Unit roundoff of P: half an ulp, relative.</summary>
    public static double UnitRoundoff(DistancePrecision p) => p == DistancePrecision.Fp16 ? Math.ScaleB(1.0, -11) : Math.ScaleB(1.0, -24);

    /// <summary>x rounded once (to nearest, ties to even) to fp16; ±infinity past the fp16 range.</summary>
    public static float RoundToHalf(double x)
    {
        if (double.IsNaN(x)) return float.NaN;
        double a = Math.Abs(x);
        if (a >= HalfOverflow) return x > 0 ? float.PositiveInfinity : float.NegativeInfinity;
        if (a == 0) return (float)x;
        // fp16 keeps 11 significant bits; below 2^-14 the spacing is fixed at 2^-24 (subnormals).
        int exponent = Math.Max(Math.ILogB(a), -14);
        double quantum = Math.ScaleB(1.0, exponent - 10);
        double r = Math.Round(a / quantum, MidpointRounding.ToEven) * quantum; // scaling by powers of two is exact
        return (float)Math.CopySign(r, x);
    }

    public static float Round(DistancePrecision p, double x) => p == DistancePrecision.Fp16 ? RoundToHalf(x) : (float)x;

    /// <summary>dst = src rounded to P (fp16: round to nearest even, overflow to ±infinity).</summary>
    public static void RoundFeatures(DistancePrecision p, ReadOnlySpan<float> src, Span<float> dst, Span<Half> scratch)
    {
        if (p == DistancePrecision.Float32)
        {
            src.CopyTo(dst);
            return;
        }
        for (int start = 0; start < src.Length; start += scratch.Length)
        {
            int len = Math.Min(scratch.Length, src.Length - start);
            TensorPrimitives.ConvertToHalf(src.Slice(start, len), scratch[..len]);
            TensorPrimitives.ConvertToSingle(scratch[..len], dst.Slice(start, len));
        }
    }

    /// <summary>
    /// ‖u‖² as ADM's graph computes it for one row already rounded to P: each square rounded to P, the sum exact
    /// (fp16 squares are multiples of 2^-24 below 2^16: 2048 of them sum exactly in float64), rounded once to P.
    /// Also returns the Euclidean length of the rounded row in float64 (for error bounds).
    /// </summary>
    public static float SquaredNorm(DistancePrecision p, ReadOnlySpan<float> row, out double length)
    {
        double pipeline = 0, exact = 0;
        foreach (float x in row)
        {
            double sq = (double)x * x; // exact: a float64 holds the product of two float32 values
            exact += sq;
            pipeline += Round(p, sq);
        }
        length = Math.Sqrt(exact);
        return Round(p, pipeline);
    }

    /// <summary>Σ u·v in float64 for rows rounded to P (fp16 products are exact and, at feature scales, so is the sum).</summary>
    public static double Dot(ReadOnlySpan<float> u, ReadOnlySpan<float> v)
    {
        int i = 0;
        double sum = 0;
        if (Vector512.IsHardwareAccelerated && u.Length >= 16)
        {
            Vector512<double> acc0 = Vector512<double>.Zero, acc1 = Vector512<double>.Zero;
            for (; i + 16 <= u.Length; i += 16)
            {
                var a = Vector512.Create(u.Slice(i, 16));
                var b = Vector512.Create(v.Slice(i, 16));
                var (aLo, aHi) = Vector512.Widen(a);
                var (bLo, bHi) = Vector512.Widen(b);
                acc0 += aLo * bLo;
                acc1 += aHi * bHi;
            }
            sum = Vector512.Sum(acc0 + acc1);
        }
        for (; i < u.Length; i++) sum += (double)u[i] * v[i];
        return sum;
    }

    /// <summary>
    /// One entry of ADM's distance block from its pieces: <paramref name="normU"/>, <paramref name="normV"/> already P
    /// values, <paramref name="dot"/> the exact dot product. (norm_u − 2m) + norm_v, each step rounded to P; NaN → 0;
    /// max(·, 0). Returns +infinity when P = fp16 overflows (the caller then redoes the block in float32).
    /// </summary>
    public static float Distance(DistancePrecision p, float normU, float normV, double dot)
    {
        float m = Round(p, dot);
        float twoM = Round(p, 2.0 * m);
        float diff = Round(p, (double)normU - twoM);   // difference of two P values: exact in float64
        float d = Round(p, (double)diff + normV);
        if (float.IsNaN(d)) return 0f;
        return Math.Max(d, 0f);
    }
}
