using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Noise;
using Xunit;

namespace DyDiT.Eval.Workers.Tests.Noise;

/// <summary>The noise sources against the sampling traces of <c>fixtures/diffusion</c> (seeds and call order from diffusion.json).</summary>
public sealed class NoiseSourceTests
{
    // trace, seed, n, whether the script drew labels with randint(0, 10, (n,)), guidance (2n rows per step)
    public static TheoryData<string, ulong, int, bool, bool> Traces() => new()
    {
        { "trace_cfg4_N10.npz", 0, 3, false, true },
        { "trace_cfg1.5_N10.npz", 5, 3, true, true },
        { "trace_nocfg_N10.npz", 9, 2, true, false },
        { "trace_ddim_cfg4_N10.npz", 3, 2, false, true },
    };

    private static uint[] Bits(NpzArchive npz, string name) => MemoryMarshal.Cast<byte, uint>(npz[name].ReadAllBytes()).ToArray();

    private static uint[] Bits(float[] values) => MemoryMarshal.Cast<float, uint>(values).ToArray();

    [Theory]
    [MemberData(nameof(Traces))]
    public void TorchCpuSourceReproducesTheTraceDraws(string file, ulong seed, int n, bool drawsLabels, bool guidance)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", file));
        const int row = 4 * 8 * 8;
        var samples = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var source = new TorchCpuNoiseSource(seed);
        var z = new float[n * row];
        source.InitialLatents(samples, z);
        Assert.Equal(Bits(npz, "z"), Bits(z));
        var recordedY = MemoryMarshal.Cast<byte, long>(npz["y"].ReadAllBytes()).ToArray();
        if (drawsLabels)
        {
            var y = new long[n];
            source.Labels(samples, 10, y);
            Assert.Equal(recordedY.Take(n), y);
        }
        var stepNoise = Bits(npz, "step_noise");
        int rows = guidance ? 2 * n : n;
        Assert.Equal(10 * rows * row, stepNoise.Length);
        for (int s = 0; s < 10; s++)
        {
            var e = new float[rows * row];
            source.StepNoise(samples, s, guidance, e);
            Assert.Equal(stepNoise.AsSpan(s * rows * row, rows * row).ToArray(), Bits(e));
        }
        Assert.Throws<InvalidOperationException>(() => source.StepNoise(samples, 3, guidance, new float[rows * row]));
    }

    [Fact]
    public void ReplaySourceServesRecordedRowsBySampleIndex()
    {
        var path = Fixtures.Path("diffusion", "trace_cfg4_N10.npz");
        using var npz = NpzArchive.Open(path);
        var z = npz["z"].ToFloat32();
        var steps = npz["step_noise"].ToFloat32();
        var replay = ReplayNoiseSource.Open(path);
        Assert.Equal(3, replay.Count);
        Assert.Equal(10, replay.StepCount);
        Assert.Equal(6, replay.StepRows);
        const int row = 256;

        long[] order = [2, 0];
        var got = new float[2 * row];
        replay.InitialLatents(order, got);
        Assert.Equal(z.AsSpan(2 * row, row).ToArray(), got.AsSpan(0, row).ToArray());
        Assert.Equal(z.AsSpan(0, row).ToArray(), got.AsSpan(row, row).ToArray());

        var labels = new long[2];
        replay.Labels(order, 1000, labels);
        Assert.Equal(new long[] { 1, 3 }, labels);

        var e = new float[4 * row];
        replay.StepNoise(order, 7, guidanceBatch: true, e);
        var step7 = steps.AsSpan(7 * 6 * row, 6 * row);
        Assert.Equal(step7.Slice(2 * row, row).ToArray(), e.AsSpan(0, row).ToArray());
        Assert.Equal(step7.Slice(0, row).ToArray(), e.AsSpan(row, row).ToArray());
        Assert.Equal(step7.Slice(5 * row, row).ToArray(), e.AsSpan(2 * row, row).ToArray());
        Assert.Equal(step7.Slice(3 * row, row).ToArray(), e.AsSpan(3 * row, row).ToArray());

        Assert.Throws<InvalidOperationException>(() => replay.StepNoise(order, 0, guidanceBatch: false, new float[2 * row]));
        Assert.Throws<ArgumentOutOfRangeException>(() => replay.InitialLatents([3], new float[row]));
        Assert.Throws<ArgumentException>(() => replay.InitialLatents([0], new float[row + 1]));
    }
}
