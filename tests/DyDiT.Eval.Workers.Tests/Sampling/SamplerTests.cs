using System.Runtime.InteropServices;
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
public sealed class SamplerTests(BackendPool pool, ITestOutputHelper output) : IClassFixture<BackendPool>, IDisposable
{
    private readonly Dictionary<string, DitDiffusionModel> _models = new();

    /// <summary>The fixture DiT on <paramref name="device"/>, loaded on first use by this test.</summary>
    private DitDiffusionModel Model(string device)
    {
        if (!_models.TryGetValue(device, out var model))
            _models[device] = model = DitDiffusionModel.Load(Fixtures.Path("dit", "dit_tiny.pt"),
                DitConfig.FromJson(File.ReadAllText(Fixtures.Path("dit", "dit_tiny.json"))), pool[device]);
        return model;
    }

    public void Dispose()
    {
        foreach (var model in _models.Values) model.Dispose();
    }

    // trace, seed, cfg scale, DDIM, labels given to the script (null: drawn with randint after z, sample_ddp.py)
    public static TheoryData<string, ulong, float, bool, long[]?> Traces() => new()
    {
        { "trace_cfg4_N10.npz", 0, 4f, false, [3, 7, 1] },
        { "trace_cfg1.5_N10.npz", 5, 1.5f, false, null },
        { "trace_nocfg_N10.npz", 9, 1f, false, null },
        { "trace_ddim_cfg4_N10.npz", 3, 4f, true, [2, 9] },
    };

    public static IEnumerable<object[]> TracesOnEveryBackend() => DeviceCases.Over(Traces());

    private static long[] I64(NpzArchive npz, string name) => MemoryMarshal.Cast<byte, long>(npz[name].ReadAllBytes()).ToArray();

    private Sampler NewSampler(string device, float cfg, bool ddim, double eta = 0.0, bool batchInvariant = false) =>
        new(Model(device), new SamplerSettings(DiffusionSchedule.Create("10"), cfg, ddim ? SamplerKind.Ddim : SamplerKind.Ddpm, eta, batchInvariant));

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
    [MemberData(nameof(TracesOnEveryBackend))]
    public void TheSeedAloneReproducesTheTraceWithTorchCpuNoise(string device, string file, ulong seed, float cfg, bool ddim, long[]? labels)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", file));
        int n = (int)npz["samples"].Shape[0];
        var samples = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var batch = NewSampler(device, cfg, ddim).Sample(samples, new TorchCpuNoiseSource(seed), labels);
        AssertMatchesTrace(npz, batch, n);
        // one network call per sample: same trace, same work
        var oneByOne = NewSampler(device, cfg, ddim, batchInvariant: true).Sample(samples, new TorchCpuNoiseSource(seed), labels);
        AssertMatchesTrace(npz, oneByOne, n);
        Assert.Equal(batch.StepMultiplyAccumulates, oneByOne.StepMultiplyAccumulates);
        // every step runs the network on the loop's whole batch (2n rows with guidance)
        long perSample = Model(device).Network.Config.MultiplyAccumulatesPerSample();
        Assert.Equal(10, batch.StepMultiplyAccumulates.Length);
        Assert.All(batch.StepMultiplyAccumulates, macs => Assert.Equal((cfg > 1 ? 2 * n : n) * perSample, macs));
    }

    [Theory]
    [MemberData(nameof(TracesOnEveryBackend))]
    public void ReplayedNoiseReproducesTheTrace(string device, string file, ulong seed, float cfg, bool ddim, long[]? labels)
    {
        _ = (seed, labels);
        var path = Fixtures.Path("diffusion", file);
        using var npz = NpzArchive.Open(path);
        int n = (int)npz["samples"].Shape[0];
        var samples = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var batch = NewSampler(device, cfg, ddim).Sample(samples, ReplayNoiseSource.Open(path)); // labels from the file's y
        AssertMatchesTrace(npz, batch, n);
    }

    public static IEnumerable<object[]> BatchingCases => DeviceCases.Cross(
        [4f, false, 0.0],
        [1f, false, 0.0],
        [1.5f, true, 0.5]);

    [Theory]
    [MemberData(nameof(BatchingCases))]
    public void PerSampleNoiseGivesTheSameBytesWhateverTheBatching(string device, float cfg, bool ddim, double eta)
    {
        var sampler = NewSampler(device, cfg, ddim, eta, batchInvariant: true);
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

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void DdimEtaAddsNoiseAndEtaZeroStillDrawsEveryStep(string device)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", "trace_ddim_cfg4_N10.npz"));
        long[] samples = [0, 1];
        var deterministic = NewSampler(device, 4f, ddim: true).Sample(samples, new TorchCpuNoiseSource(3), [2, 9]);
        var stochastic = NewSampler(device, 4f, ddim: true, eta: 1.0).Sample(samples, new TorchCpuNoiseSource(3), [2, 9]);
        Assert.NotEqual(deterministic.Latents, stochastic.Latents);
        Assert.All(stochastic.Latents, v => Assert.True(float.IsFinite(v)));
        AssertNear("ddim eta 0", npz["samples"].ToFloat32(), deterministic.Latents);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void BadSettingsAreRejected(string device)
    {
        Assert.Throws<ArgumentException>(() => NewSampler(device, 0.5f, false));
        Assert.Throws<ArgumentException>(() => NewSampler(device, 1.5f, false).Sample([0], new PerSampleNoise(0), [10]));
        Assert.Throws<ArgumentException>(() => NewSampler(device, 1.5f, false).Sample([0, 1], new PerSampleNoise(0), [1]));
    }
}
