using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>The DyDiT kernels (row gather/scatter, linear layers on blocks of outputs or inputs) against naive float64 loops.</summary>
public sealed class DyDitKernelTests : IDisposable
{
    private readonly CpuBackend _cpu = new(threads: 2);

    public void Dispose() => _cpu.Dispose();

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    [Fact]
    public void GatherAndScatterMoveWholeRows()
    {
        var x = Random(5 * 3, 1);
        using var tx = _cpu.FromHost(x, 5, 3);
        using var picked = _cpu.Empty(3, 3);
        _cpu.GatherRows(tx, [4, 0, 2], picked);
        Assert.Equal([.. x[12..15], .. x[0..3], .. x[6..9]], picked.ToArray());

        using var target = _cpu.Zeros(5, 3);
        _cpu.ScatterRows(picked, [1, 3, 4], target);
        var t = target.ToArray();
        Assert.Equal(new float[3], t[0..3]);
        Assert.Equal(x[12..15], t[3..6]);
        Assert.Equal(new float[3], t[6..9]);
        Assert.Equal(x[0..3], t[9..12]);
        Assert.Equal(x[6..9], t[12..15]);

        Assert.Throws<ArgumentOutOfRangeException>(() => _cpu.GatherRows(tx, [0, 5, 1], picked));
        Assert.Throws<ArgumentException>(() => _cpu.GatherRows(tx, [0, 1], picked));
    }

    // blocks chosen to give several runs, a run at either end, a single block and all blocks
    public static TheoryData<int[]> BlockSets() => new() { new[] { 0, 2, 3, 5 }, new[] { 0 }, new[] { 1, 2, 3, 4, 5 }, new[] { 0, 1, 2, 3, 4, 5 }, new[] { 5 } };

    [Theory]
    [MemberData(nameof(BlockSets))]
    public void LinearRowBlocksComputesTheSelectedOutputs(int[] blocks)
    {
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
        using var tx = _cpu.FromHost(x, 1, rows, k);
        using var tw = _cpu.FromHost(w, o, k);
        using var tb = _cpu.FromHost(b, o);
        using var ty = _cpu.Empty(1, rows, width);
        _cpu.LinearRowBlocks(tx, tw, tb, blocks, bs, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-5);
    }

    [Theory]
    [MemberData(nameof(BlockSets))]
    public void LinearColumnBlocksEqualsZeroFilledInput(int[] blocks)
    {
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
        using var tx = _cpu.FromHost(x, rows, width);
        using var tw = _cpu.FromHost(w, o, k);
        using var tb = _cpu.FromHost(b, o);
        using var ty = _cpu.Empty(rows, o);
        _cpu.LinearColumnBlocks(tx, tw, tb, blocks, bs, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-5);
    }

    [Fact]
    public void BlockListsAreChecked()
    {
        using var x = _cpu.Zeros(2, 8);
        using var w = _cpu.Zeros(12, 8);
        using var b = _cpu.Zeros(12);
        using var y = _cpu.Empty(2, 8);
        Assert.Throws<ArgumentException>(() => _cpu.LinearRowBlocks(x, w, b, [1, 0], 4, y));       // not increasing
        Assert.Throws<ArgumentOutOfRangeException>(() => _cpu.LinearRowBlocks(x, w, b, [0, 3], 4, y)); // only 3 blocks
        Assert.Throws<ArgumentException>(() => _cpu.LinearRowBlocks(x, w, b, [0, 1], 5, y));       // 12 rows ≠ blocks of 5
        using var y3 = _cpu.Empty(2, 12);
        Assert.Throws<ArgumentException>(() => _cpu.LinearColumnBlocks(x, w, b, [0], 4, y3));       // x has 2 blocks' worth
    }
}
