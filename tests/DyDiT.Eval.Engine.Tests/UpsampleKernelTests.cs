using DyDiT.Eval.Engine.Backends.Cpu;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>Nearest 2× upsampling against a naive index loop.</summary>
public sealed class UpsampleKernelTests : IDisposable
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
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 3, 5, 4)]
    [InlineData(3, 40, 24, 48)]   // large enough to run in parallel
    public void UpsampleNearest2xMatchesNaive(int n, int h, int w, int c)
    {
        var x = Sequence(n * h * w * c);
        using var tx = _cpu.FromHost(x, n, h, w, c);
        using var ty = _cpu.Empty(n, 2 * h, 2 * w, c);
        _cpu.UpsampleNearest2x(tx, ty);
        var y = ty.ToArray();
        for (int b = 0; b < n; b++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    for (int k = 0; k < c; k++)
                        Assert.Equal(x[((b * h + i / 2) * w + j / 2) * c + k], y[((b * 2 * h + i) * 2 * w + j) * c + k]);
    }

    [Fact]
    public void UpsampleRejectsWrongDestination()
    {
        using var x = _cpu.Zeros(1, 2, 3, 4);
        using var y = _cpu.Zeros(1, 4, 5, 4);
        Assert.Throws<ArgumentException>(() => _cpu.UpsampleNearest2x(x, y));
    }
}
