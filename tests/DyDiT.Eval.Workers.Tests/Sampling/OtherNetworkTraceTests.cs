using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Diffusion;
using DyDiT.Eval.Workers.Noise;
using DyDiT.Eval.Workers.Sampling;
using Xunit;

namespace DyDiT.Eval.Workers.Tests.Sampling;

/// <summary>
/// The sampler drives DyDiT and SparseDiT as it drives DiT: their official 10-step traces (fixtures/dydit,
/// fixtures/sparsedit; seeds, guidance and labels from the fixtures' JSON) are reproduced from the seed alone with the
/// torch CPU generator. Tolerance (fixture README): max abs error ≤ 1e-5 × max abs reference.
/// </summary>
public sealed class OtherNetworkTraceTests(BackendPool pool) : IClassFixture<BackendPool>
{
    // folder, model json/pt stem, trace file, seed, cfg, DDIM, labels given to the script (null: drawn after z)
    public static TheoryData<string, string, string, ulong, float, bool, long[]?> Traces() => new()
    {
        { "dydit", "dydit_tiny", "dydit_tiny_trace.npz", 7, 1.5f, false, null },
        { "sparsedit", "sparsedit_tiny", "sparsedit_tiny_trace_cfg1.5_N10.npz", 11, 1.5f, false, null },
        { "sparsedit", "sparsedit_tiny", "sparsedit_tiny_trace_ddim_cfg4_N10.npz", 8, 4f, true, [3, 3] },
    };

    public static IEnumerable<object[]> TracesOnEveryBackend() => DeviceCases.Over(Traces());

    private static void AssertNear(string what, float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float maxRef = 0, maxErr = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            maxErr = Math.Max(maxErr, Math.Abs(expected[i] - actual[i]));
        }
        Assert.True(maxErr <= 1e-5f * maxRef, $"{what}: max abs err {maxErr:E3} > 1e-5 · {maxRef}");
    }

    [Theory]
    [MemberData(nameof(TracesOnEveryBackend))]
    public void TheSeedAloneReproducesTheTrace(string device, string folder, string model, string trace, ulong seed, float cfg, bool ddim, long[]? labels)
    {
        using var network = DiffusionModels.Load(Fixtures.Path(folder, model + ".json"), Fixtures.Path(folder, model + ".pt"), pool[device]);
        Assert.Equal(folder == "dydit" ? "DyDiT" : "SparseDiT", network.Name);
        using var npz = NpzArchive.Open(Fixtures.Path(folder, trace));
        int n = (int)npz["samples"].Shape[0];
        var sampler = new Sampler(network, new SamplerSettings(DiffusionSchedule.Create("10"), cfg, ddim ? SamplerKind.Ddim : SamplerKind.Ddpm));
        var batch = sampler.Sample(Enumerable.Range(0, n).Select(i => (long)i).ToArray(), new TorchCpuNoiseSource(seed), labels);
        Assert.Equal(MemoryMarshal.Cast<byte, long>(npz["y"].ReadAllBytes()).ToArray().Take(n), batch.Labels);
        AssertNear("samples", npz["samples"].ToFloat32(), batch.Latents);
    }
}
