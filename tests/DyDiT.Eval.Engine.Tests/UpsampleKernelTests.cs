using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>Nearest 2× upsampling against a naive index loop.</summary>
public sealed class UpsampleKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    /// <summary>Each case of <paramref name="cases"/> once per device, the device first.</summary>
    private static IEnumerable<object[]> OnEachDevice(params object[][] cases) =>
        from object[] device in TestBackends.Devices
        from c in cases
        select new[] { device[0] }.Concat(c).ToArray();

    public static IEnumerable<object[]> UpsampleNearest2xMatchesNaiveCases => OnEachDevice(
        [1, 1, 1, 1],
        [2, 3, 5, 4],
        [3, 40, 24, 48]);   // large enough to run in parallel

    private static float[] Sequence(int n)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i * 0.5f - 3;
        return v;
    }

    [Theory, MemberData(nameof(UpsampleNearest2xMatchesNaiveCases))]
    public void UpsampleNearest2xMatchesNaive(string device, int n, int h, int w, int c)
    {
        var backend = pool[device];
        var x = Sequence(n * h * w * c);
        using var tx = backend.FromHost(x, n, h, w, c);
        using var ty = backend.Empty(n, 2 * h, 2 * w, c);
        backend.UpsampleNearest2x(tx, ty);
        var y = ty.ToArray();
        for (int b = 0; b < n; b++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    for (int k = 0; k < c; k++)
                        Assert.Equal(x[((b * h + i / 2) * w + j / 2) * c + k], y[((b * 2 * h + i) * 2 * w + j) * c + k]);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void UpsampleRejectsWrongDestination(string device)
    {
        var backend = pool[device];
        using var x = backend.Zeros(1, 2, 3, 4);
        using var y = backend.Zeros(1, 4, 5, 4);
        Assert.Throws<ArgumentException>(() => backend.UpsampleNearest2x(x, y));
    }
}
