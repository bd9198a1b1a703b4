using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>
/// GroupNorm against a naive float64 loop written from torch.nn.GroupNorm's definition on NCHW, indexed here in
/// NHWC: each (sample, group) is normalised over H·W·(C/G) values with the biased variance.
/// </summary>
public sealed class GroupNormKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    /// <summary>Each case of <paramref name="cases"/> once per device, the device first.</summary>
    private static IEnumerable<object[]> OnEachDevice(params object[][] cases) =>
        from object[] device in TestBackends.Devices
        from c in cases
        select new[] { device[0] }.Concat(c).ToArray();

    // n, h, w, c, groups, eps, affine
    public static IEnumerable<object[]> MatchesNaiveCases => OnEachDevice(
        [2, 5, 7, 16, 4, 1e-6, true],
        [1, 3, 3, 12, 12, 1e-5, true],     // one channel per group (instance norm)
        [3, 4, 2, 6, 1, 1e-6, false],      // one group (layer norm over the image), no affine
        [2, 64, 48, 64, 32, 1e-6, true]);  // big enough for the parallel paths; 2 channels per group

    private static float[] Random(int n, int seed, float lo = -1, float hi = 1)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(lo + rng.NextDouble() * (hi - lo));
        return v;
    }

    // x: (N, P, C) channels-last, P = H·W
    private static double[] Naive(float[] x, int n, int p, int c, int groups, double eps, float[]? gamma, float[]? beta)
    {
        var y = new double[x.Length];
        int cg = c / groups;
        for (int b = 0; b < n; b++)
            for (int g = 0; g < groups; g++)
            {
                double sum = 0, sq = 0;
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < cg; j++) sum += x[(b * p + i) * c + g * cg + j];
                double mean = sum / (p * cg);
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < cg; j++)
                    {
                        double d = x[(b * p + i) * c + g * cg + j] - mean;
                        sq += d * d;
                    }
                double std = Math.Sqrt(sq / (p * cg) + eps);
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < cg; j++)
                    {
                        int ch = g * cg + j, at = (b * p + i) * c + ch;
                        y[at] = (x[at] - mean) / std * (gamma?[ch] ?? 1.0) + (beta?[ch] ?? 0.0);
                    }
            }
        return y;
    }

    [Theory, MemberData(nameof(MatchesNaiveCases))]
    public void MatchesNaive(string device, int n, int h, int w, int c, int groups, double eps, bool affine)
    {
        var backend = pool[device];
        var x = Random(n * h * w * c, 1, -3, 5); // mean far from 0, as activations often are
        var gamma = affine ? Random(c, 2, 0.5f, 1.5f) : null;
        var beta = affine ? Random(c, 3) : null;
        var expected = Naive(x, n, h * w, c, groups, eps, gamma, beta);

        using var tx = backend.FromHost(x, n, h, w, c);
        using var tg = gamma is null ? null : backend.FromHost(gamma, c);
        using var tb = beta is null ? null : backend.FromHost(beta, c);
        using var ty = backend.Empty(n, h, w, c);
        backend.GroupNorm(tx, groups, (float)eps, tg, tb, ty);
        var y = ty.ToArray();
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(expected[i] - y[i]) <= 2e-6 * Math.Max(1, Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {y[i]}");

        // In place gives the same values.
        backend.GroupNorm(tx, groups, (float)eps, tg, tb, tx);
        Assert.Equal(y, tx.ToArray());
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void EpsMattersForConstantGroups(string device)
    {
        var backend = pool[device];
        // A constant group has variance 0: its output is exactly β (here 0), and eps keeps it finite.
        using var tx = backend.FromHost([2f, 2f, 2f, 2f, 2f, -1f, 2f, -1f], 1, 2, 2, 2); // channel 0 constant
        using var ty = backend.Empty(1, 2, 2, 2);
        backend.GroupNorm(tx, 2, 1e-6f, null, null, ty);
        var y = ty.ToArray();
        Assert.Equal(0f, y[0]);
        Assert.Equal(0f, y[2]);
        // group 1 = channel 1: values 2, 2, -1, -1 → mean 0.5, var 2.25 → ±1.5 / √(2.25 + 1e-6)
        Assert.Equal(1.5 / Math.Sqrt(2.25 + 1e-6), y[1], 6);
        Assert.Equal(-1.5 / Math.Sqrt(2.25 + 1e-6), y[7], 6);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void RejectsBadArguments(string device)
    {
        var backend = pool[device];
        using var x = backend.Zeros(1, 2, 2, 6);
        using var y = backend.Zeros(1, 2, 2, 6);
        Assert.Throws<ArgumentException>(() => backend.GroupNorm(x, 4, 1e-6f, null, null, y)); // 6 % 4 != 0
        using var wrongWeight = backend.Zeros(5);
        Assert.Throws<ArgumentException>(() => backend.GroupNorm(x, 3, 1e-6f, wrongWeight, null, y));
        using var wrongShape = backend.Zeros(1, 2, 3, 6);
        Assert.Throws<ArgumentException>(() => backend.GroupNorm(x, 3, 1e-6f, null, null, wrongShape));
    }
}
