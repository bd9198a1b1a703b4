using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Tests.Common;

/// <summary>The two closeness rules the numeric tests state their tolerances in.</summary>
public static class Close
{
    /// <summary>
    /// Per element: |expected − actual| ≤ tolerance · max(1, |expected|) — a kernel against its float64 reference loop.
    /// </summary>
    public static void PerElement(double[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])),
                $"index {i}: expected {expected[i]}, got {actual[i]}");
    }

    /// <summary>
    /// The fixtures' rule (fixtures/README.md, "Tolerances"): max |Δ| ≤ tolerance, or with <paramref name="relativeToMax"/>
    /// ≤ tolerance · max(1, max |ref|). Writes the figures to <paramref name="output"/>; returns max |Δ|.
    /// </summary>
    public static double MaxAbs(ITestOutputHelper output, string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual,
        double tolerance, bool relativeToMax = false)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)expected[i] - actual[i]));
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        }
        double limit = relativeToMax ? tolerance * Math.Max(1, maxRef) : tolerance;
        output.WriteLine($"{what}: max |Δ| = {maxDiff:E2} (limit {limit:E1}, max |ref| {maxRef:F3})");
        Assert.True(maxDiff <= limit, $"{what}: max |Δ| = {maxDiff} > {limit}");
        return maxDiff;
    }
}
