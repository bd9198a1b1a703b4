using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>The DyDiT kernels (row gather/scatter, linear layers on blocks of outputs or inputs) against naive float64 loops.</summary>
public sealed class DyDitKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    private readonly BackendPool _pool = pool;

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void GatherAndScatterMoveWholeRows(string device)
    {
        var backend = _pool[device];
        var x = Random(5 * 3, 1);
        using var tx = backend.FromHost(x, 5, 3);
        using var picked = backend.Empty(3, 3);
        backend.GatherRows(tx, [4, 0, 2], picked);
        Assert.Equal([.. x[12..15], .. x[0..3], .. x[6..9]], picked.ToArray());

        using var target = backend.Zeros(5, 3);
        backend.ScatterRows(picked, [1, 3, 4], target);
        var t = target.ToArray();
        Assert.Equal(new float[3], t[0..3]);
        Assert.Equal(x[12..15], t[3..6]);
        Assert.Equal(new float[3], t[6..9]);
        Assert.Equal(x[0..3], t[9..12]);
        Assert.Equal(x[6..9], t[12..15]);

        Assert.Throws<ArgumentOutOfRangeException>(() => backend.GatherRows(tx, [0, 5, 1], picked));
        Assert.Throws<ArgumentException>(() => backend.GatherRows(tx, [0, 1], picked));
    }

    // blocks chosen to give several runs, a run at either end, a single block and all blocks
    public static IEnumerable<object[]> BlockSets() => DeviceCases.Cross(
        [new[] { 0, 2, 3, 5 }], [new[] { 0 }], [new[] { 1, 2, 3, 4, 5 }], [new[] { 0, 1, 2, 3, 4, 5 }], [new[] { 5 }]);

    [Theory, MemberData(nameof(BlockSets))]
    public void LinearRowBlocksComputesTheSelectedOutputs(string device, int[] blocks)
    {
        var backend = _pool[device];
        const int rows = 37, k = 24, bs = 5, o = 6 * bs;
        var x = Random(rows * k, 2);
        var w = Random(o * k, 3);
        var b = Random(o, 4);
        int width = blocks.Length * bs;
        var expected = new double[rows * width];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < blocks.Length; j++)
                for (int i = 0; i < bs; i++)
                {
                    int row = blocks[j] * bs + i;
                    double s = b[row];
                    for (int q = 0; q < k; q++) s += (double)x[r * k + q] * w[row * k + q];
                    expected[r * width + j * bs + i] = s;
                }
        using var tx = backend.FromHost(x, 1, rows, k);
        using var tw = backend.FromHost(w, o, k);
        using var tb = backend.FromHost(b, o);
        using var ty = backend.Empty(1, rows, width);
        backend.LinearRowBlocks(tx, tw, tb, blocks, bs, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-5);
    }

    [Theory, MemberData(nameof(BlockSets))]
    public void LinearColumnBlocksEqualsZeroFilledInput(string device, int[] blocks)
    {
        var backend = _pool[device];
        const int rows = 29, bs = 4, k = 6 * bs, o = 17;
        int width = blocks.Length * bs;
        var x = Random(rows * width, 5);
        var w = Random(o * k, 6);
        var b = Random(o, 7);
        var expected = new double[rows * o];
        for (int r = 0; r < rows; r++)
            for (int n = 0; n < o; n++)
            {
                double s = b[n];
                for (int j = 0; j < blocks.Length; j++)
                    for (int i = 0; i < bs; i++) s += (double)x[r * width + j * bs + i] * w[n * k + blocks[j] * bs + i];
                expected[r * o + n] = s;
            }
        using var tx = backend.FromHost(x, rows, width);
        using var tw = backend.FromHost(w, o, k);
        using var tb = backend.FromHost(b, o);
        using var ty = backend.Empty(rows, o);
        backend.LinearColumnBlocks(tx, tw, tb, blocks, bs, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-5);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void BlockListsAreChecked(string device)
    {
        var backend = _pool[device];
        using var x = backend.Zeros(2, 8);
        using var w = backend.Zeros(12, 8);
        using var b = backend.Zeros(12);
        using var y = backend.Empty(2, 8);
        Assert.Throws<ArgumentException>(() => backend.LinearRowBlocks(x, w, b, [1, 0], 4, y));       // not increasing
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.LinearRowBlocks(x, w, b, [0, 3], 4, y)); // only 3 blocks
        Assert.Throws<ArgumentException>(() => backend.LinearRowBlocks(x, w, b, [0, 1], 5, y));       // 12 rows ≠ blocks of 5
        using var y3 = backend.Empty(2, 12);
        Assert.Throws<ArgumentException>(() => backend.LinearColumnBlocks(x, w, b, [0], 4, y3));       // x has 2 blocks' worth
    }
}
