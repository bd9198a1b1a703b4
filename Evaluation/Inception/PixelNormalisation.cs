using System.Numerics;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>Which value mapping follows the resize (applied row by row while the row is still in cache).</summary>
internal enum PixelNormalisation
{
    /// <summary>Values unchanged.</summary>
    None,

    /// <summary>ADM's TF graph: <c>Sub 128</c> then <c>Mul 0.0078125</c> (bit-identical to <c>(x − 128) / 128</c>).</summary>
    Adm,

    /// <summary>pytorch-fid: <c>2·x − 1</c> (two float32 operations, not fused).</summary>
    PytorchFid,
}

internal static class PixelNormalisationExtensions
{
    public static void Apply(this PixelNormalisation normalisation, Span<float> values)
    {
        switch (normalisation)
        {
            case PixelNormalisation.None:
                return;
            case PixelNormalisation.Adm:
                Affine(values, subtract: 128f, multiply: 0.0078125f, multiplyFirst: false);
                return;
            case PixelNormalisation.PytorchFid:
                Affine(values, subtract: 1f, multiply: 2f, multiplyFirst: true);
                return;
            default:
                throw new ArgumentOutOfRangeException(nameof(normalisation), normalisation, null);
        }
    }

    // Each step is one IEEE float32 operation; Vector<float> and scalar code round identically.
    private static void Affine(Span<float> values, float subtract, float multiply, bool multiplyFirst)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var s = new Vector<float>(subtract);
            var m = new Vector<float>(multiply);
            for (; i <= values.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(values.Slice(i));
                v = multiplyFirst ? v * m - s : (v - s) * m;
                v.CopyTo(values.Slice(i));
            }
        }
        for (; i < values.Length; i++)
            values[i] = multiplyFirst ? values[i] * multiply - subtract : (values[i] - subtract) * multiply;
    }
}
