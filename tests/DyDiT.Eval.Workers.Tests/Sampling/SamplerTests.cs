using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Diffusion;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Noise;
using DyDiT.Eval.Workers.Sampling;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Workers.Tests.Sampling;

/// <summary>
/// The whole sampling loop with the fixture DiT (<c>dit/dit_tiny.pt</c>) against the 10-step traces of
/// <c>fixtures/diffusion</c> (recipes in diffusion.json). Tolerance (README): max abs error ≤ 1e-5 · max abs reference.
/// </summary>
public sealed class SamplerTests(ITestOutputHelper output) : IDisposable
{
    private readonly CpuBackend _cpu = new(threads: 2);
    private readonly Lazy<DitDiffusionModel> _model = new(() => DitDiffusionModel.Load(Fixtures.Path("dit", "dit_tiny.pt"),
        DitConfig.FromJson(File.ReadAllText(Fixtures.Path("dit", "dit_tiny.json"))), new CpuBackend(threads: 2)));

    public void Dispose()
    {
        if (_model.IsValueCreated)
        {
            _model.Value.Dispose();
            _model.Value.Backend.Dispose();
        }
        _cpu.Dispose();
    }

    // trace, seed, cfg scale, DDIM, labels given to the script (null: drawn with randint after z, sample_ddp.py)
    public static TheoryData<string, ulong, float, bool, long[]?> Traces() => new()
    {
        { "trace_cfg4_N10.npz", 0, 4f, false, [3, 7, 1] },
        { "trace_cfg1.5_N10.npz", 5, 1.5f, false, null },
        { "trace_nocfg_N10.npz", 9, 1f, false, null },
        { "trace_ddim_cfg4_N10.npz", 3, 4f, true, [2, 9] },
    };

    private static long[] I64(NpzArchive npz, string name) => MemoryMarshal.Cast<byte, long>(npz[name].ReadAllBytes()).ToArray();

    private Sampler NewSampler(float cfg, bool ddim, double eta = 0.0, bool batchInvariant = false) =>
        new(_model.Value, new SamplerSettings(DiffusionSchedule.Create("10"), cfg, ddim ? SamplerKind.Ddim : SamplerKind.Ddpm, eta, batchInvariant));

    private void AssertNear(string what, float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float maxRef = 0, maxErr = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            maxErr = Math.Max(maxErr, Math.Abs(expected[i] - actual[i]));
        }
        output.WriteLine($"{what}: max abs err {maxErr:E2}, / max abs ref ({maxRef:F1}) = {maxErr / maxRef:E2}");
        Assert.True(maxErr <= 1e-5f * maxRef, $"{what}: max abs err {maxErr:E3} > 1e-5 · {maxRef}");
    }

    private void AssertMatchesTrace(NpzArchive npz, SampleBatch batch, int n)
    {
        Assert.Equal(I64(npz, "y").Take(n), batch.Labels);
        AssertNear("final", npz["final"].ToFloat32(), batch.Final);
        AssertNear("samples", npz["samples"].ToFloat32(), batch.Latents);
    }

    [Theory]
    [MemberData(nameof(Traces))]
    public void TheSeedAloneReproducesTheTraceWithTorchCpuNoise(string file, ulong seed, float cfg, bool ddim, long[]? labels)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", file));
        int n = (int)npz["samples"].Shape[0];
        var samples = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var batch = NewSampler(cfg, ddim).Sample(samples, new TorchCpuNoiseSource(seed), labels);
        AssertMatchesTrace(npz, batch, n);
        // one network call per sample: same trace, same work
        var oneByOne = NewSampler(cfg, ddim, batchInvariant: true).Sample(samples, new TorchCpuNoiseSource(seed), labels);
        AssertMatchesTrace(npz, oneByOne, n);
        Assert.Equal(batch.StepMultiplyAccumulates, oneByOne.StepMultiplyAccumulates);
        // every step runs the network on the loop's whole batch (2n rows with guidance)
        long perSample = _model.Value.Network.Config.MultiplyAccumulatesPerSample();
        Assert.Equal(10, batch.StepMultiplyAccumulates.Length);
        Assert.All(batch.StepMultiplyAccumulates, macs => Assert.Equal((cfg > 1 ? 2 * n : n) * perSample, macs));
    }

    [Theory]
    [MemberData(nameof(Traces))]
    public void ReplayedNoiseReproducesTheTrace(string file, ulong seed, float cfg, bool ddim, long[]? labels)
    {
        _ = (seed, labels);
        var path = Fixtures.Path("diffusion", file);
        using var npz = NpzArchive.Open(path);
        int n = (int)npz["samples"].Shape[0];
        var samples = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var batch = NewSampler(cfg, ddim).Sample(samples, ReplayNoiseSource.Open(path)); // labels from the file's y
        AssertMatchesTrace(npz, batch, n);
    }

    [Theory]
    [InlineData(4f, false, 0.0)]
    [InlineData(1f, false, 0.0)]
    [InlineData(1.5f, true, 0.5)]
    public void PerSampleNoiseGivesTheSameBytesWhateverTheBatching(float cfg, bool ddim, double eta)
    {
        var sampler = NewSampler(cfg, ddim, eta, batchInvariant: true);
        var noise = new PerSampleNoise(seed: 42);
        var all = Enumerable.Range(0, 8).Select(i => (long)i).ToArray();
        var whole = sampler.Sample(all, noise);
        var parts = new[] { all[..3], all[3..6], all[6..] }.Select(p => sampler.Sample(p, noise)).ToArray();
        Assert.Equal(whole.Labels, parts.SelectMany(p => p.Labels));
        var wholeBits = MemoryMarshal.Cast<float, uint>(whole.Latents).ToArray();
        var partBits = parts.SelectMany(p => MemoryMarshal.Cast<float, uint>(p.Latents).ToArray()).ToArray();
        Assert.Equal(wholeBits, partBits);
        // and a batch in another order: row r is still sample samples[r]
        var shuffled = sampler.Sample([5, 2], noise);
        int row = sampler.LatentSize;
        Assert.Equal(wholeBits.AsSpan(5 * row, row).ToArray(), MemoryMarshal.Cast<float, uint>(shuffled.Latents.AsSpan(0, row)).ToArray());
        Assert.Equal(wholeBits.AsSpan(2 * row, row).ToArray(), MemoryMarshal.Cast<float, uint>(shuffled.Latents.AsSpan(row, row)).ToArray());
    }

    [Fact]
    public void DdimEtaAddsNoiseAndEtaZeroStillDrawsEveryStep()
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", "trace_ddim_cfg4_N10.npz"));
        long[] samples = [0, 1];
        var deterministic = NewSampler(4f, ddim: true).Sample(samples, new TorchCpuNoiseSource(3), [2, 9]);
        var stochastic = NewSampler(4f, ddim: true, eta: 1.0).Sample(samples, new TorchCpuNoiseSource(3), [2, 9]);
        Assert.NotEqual(deterministic.Latents, stochastic.Latents);
        Assert.All(stochastic.Latents, v => Assert.True(float.IsFinite(v)));
        AssertNear("ddim eta 0", npz["samples"].ToFloat32(), deterministic.Latents);
    }

    [Fact]
    public void BadSettingsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => NewSampler(0.5f, false));
        Assert.Throws<ArgumentException>(() => NewSampler(1.5f, false).Sample([0], new PerSampleNoise(0), [10]));
        Assert.Throws<ArgumentException>(() => NewSampler(1.5f, false).Sample([0, 1], new PerSampleNoise(0), [1]));
    }
}
