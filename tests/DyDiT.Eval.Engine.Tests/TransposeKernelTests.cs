using DyDiT.Eval.Engine.Backends.Cpu;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>TransposeLastTwo (the NCHW ↔ NHWC conversion) against a naive index loop.</summary>
public sealed class TransposeKernelTests : IDisposable
{
    private readonly CpuBackend _cpu = new(threads: 2);

    public void Dispose() => _cpu.Dispose();

    private static float[] Sequence(int n)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i * 0.5f - 3;
        return v;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 4, 1024)]    // NCHW → NHWC of a 4-channel 32×32 latent
    [InlineData(2, 1000, 3)]    // NHWC → NCHW of an RGB image
    [InlineData(5, 37, 65)]     // ragged tiles
    [InlineData(4, 300, 260)]   // large enough to run in parallel
    public void TransposeLastTwoMatchesNaive(int batch, int rows, int cols)
    {
        var x = Sequence(batch * rows * cols);
        using var tx = _cpu.FromHost(x, batch, rows, cols);
        using var ty = _cpu.Empty(batch, cols, rows);
        _cpu.TransposeLastTwo(tx, ty);
        var y = ty.ToArray();
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    Assert.Equal(x[(b * rows + i) * cols + j], y[(b * cols + j) * rows + i]);
    }

    [Fact]
    public void TransposeRejectsWrongDestination()
    {
        using var x = _cpu.Zeros(2, 3, 4);
        using var same = _cpu.Zeros(2, 3, 4);
        Assert.Throws<ArgumentException>(() => _cpu.TransposeLastTwo(x, same));
        using var batch = _cpu.Zeros(1, 4, 6);
        Assert.Throws<ArgumentException>(() => _cpu.TransposeLastTwo(x, batch));
    }
}
