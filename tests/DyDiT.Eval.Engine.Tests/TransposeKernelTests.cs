using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>TransposeLastTwo (the NCHW ↔ NHWC conversion) against a naive index loop.</summary>
public sealed class TransposeKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    /// <summary>Each case of <paramref name="cases"/> once per device, the device first.</summary>
    private static IEnumerable<object[]> OnEachDevice(params object[][] cases) =>
        from object[] device in TestBackends.Devices
        from c in cases
        select new[] { device[0] }.Concat(c).ToArray();

    public static IEnumerable<object[]> TransposeLastTwoMatchesNaiveCases => OnEachDevice(
        [1, 1, 1],
        [3, 4, 1024],    // NCHW → NHWC of a 4-channel 32×32 latent
        [2, 1000, 3],    // NHWC → NCHW of an RGB image
        [5, 37, 65],     // ragged tiles
        [4, 300, 260]);  // large enough to run in parallel

    private static float[] Sequence(int n)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i * 0.5f - 3;
        return v;
    }

    [Theory, MemberData(nameof(TransposeLastTwoMatchesNaiveCases))]
    public void TransposeLastTwoMatchesNaive(string device, int batch, int rows, int cols)
    {
        var backend = pool[device];
        var x = Sequence(batch * rows * cols);
        using var tx = backend.FromHost(x, batch, rows, cols);
        using var ty = backend.Empty(batch, cols, rows);
        backend.TransposeLastTwo(tx, ty);
        var y = ty.ToArray();
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    Assert.Equal(x[(b * rows + i) * cols + j], y[(b * cols + j) * rows + i]);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void TransposeRejectsWrongDestination(string device)
    {
        var backend = pool[device];
        using var x = backend.Zeros(2, 3, 4);
        using var same = backend.Zeros(2, 3, 4);
        Assert.Throws<ArgumentException>(() => backend.TransposeLastTwo(x, same));
        using var batch = backend.Zeros(1, 4, 6);
        Assert.Throws<ArgumentException>(() => backend.TransposeLastTwo(x, batch));
    }
}
