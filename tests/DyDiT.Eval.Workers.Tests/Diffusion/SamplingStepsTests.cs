using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Diffusion;
using Xunit;

namespace DyDiT.Eval.Workers.Tests.Diffusion;

/// <summary>
/// The per-step math against the 10-step traces of <c>fixtures/diffusion</c>, replaying the recorded model
/// outputs and noise. Tolerance (README): max abs error ≤ 1e-5 · max abs reference, per step.
/// </summary>
public sealed class SamplingStepsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int C = 4;
    private const int Plane = 8 * 8;

    public static TheoryData<string, bool> Traces() => new()
    {
        { "trace_cfg4_N10.npz", false },
        { "trace_cfg1.5_N10.npz", false },
        { "trace_nocfg_N10.npz", false },
        { "trace_ddim_cfg4_N10.npz", true },
    };

    private static long[] I64(NpzArchive npz, string name) => MemoryMarshal.Cast<byte, long>(npz[name].ReadAllBytes()).ToArray();

    private void AssertNear(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float maxRef = 0, maxErr = 0;
        int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            float err = Math.Abs(expected[i] - actual[i]);
            if (!(err <= maxErr)) { maxErr = err; worst = i; }
        }
        output.WriteLine($"{what}: max abs err / max abs ref = {maxErr / Math.Max(maxRef, 1e-30f):E2}");
        Assert.True(maxErr <= 1e-5f * Math.Max(maxRef, 1e-30f), $"{what}: max abs err {maxErr:E3} at {worst} (got {actual[worst]:R}, want {expected[worst]:R}), max abs ref {maxRef:R}");
    }

    [Theory]
    [MemberData(nameof(Traces))]
    public void EachStepMatchesTheTrace(string file, bool ddim)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", file));
        var schedule = DiffusionSchedule.Create("10");
        Assert.Equal(I64(npz, "timestep_map"), schedule.TimestepMap.Select(v => (long)v));
        var stepIndex = I64(npz, "step_index");
        var modelT = I64(npz, "model_t");
        var modelIn = npz["model_in"].ToFloat32();
        var modelOut = npz["model_out"].ToFloat32();
        var mean = npz["mean"].ToFloat32();
        var logVar = npz["log_variance"].ToFloat32();
        var predX0 = npz["pred_xstart"].ToFloat32();
        var noise = npz["step_noise"].ToFloat32();
        var xPrev = npz["x_prev"].ToFloat32();
        int rows = (int)npz["x_T"].Shape[0];
        int n = rows * C * Plane;
        Assert.Equal(10, stepIndex.Length);

        var m = new float[n];
        var lv = new float[n];
        var x0 = new float[n];
        var next = new float[n];
        for (int s = 0; s < 10; s++)
        {
            int t = (int)stepIndex[s];
            Assert.Equal(9 - s, t);
            for (int r = 0; r < rows; r++) Assert.Equal(schedule.TimestepMap[t], modelT[s * rows + r]);
            var x = modelIn.AsSpan(s * n, n);
            SamplingSteps.PMeanVariance(schedule, t, rows, C, x, modelOut.AsSpan(s * 2 * n, 2 * n), m, lv, x0);
            AssertNear($"mean step {s}", mean.AsSpan(s * n, n), m);
            AssertNear($"log_variance step {s}", logVar.AsSpan(s * n, n), lv);
            AssertNear($"pred_xstart step {s}", predX0.AsSpan(s * n, n), x0);
            if (ddim) SamplingSteps.DdimStep(schedule, t, 0.0, x, x0, noise.AsSpan(s * n, n), next);
            else SamplingSteps.PSample(t, m, lv, noise.AsSpan(s * n, n), next);
            AssertNear($"x_prev step {s}", xPrev.AsSpan(s * n, n), next);
        }
    }

    [Theory]
    [MemberData(nameof(Traces))]
    public void WholeChainFromXTMatchesTheFinalSamples(string file, bool ddim)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", file));
        var schedule = DiffusionSchedule.Create("10");
        var x = npz["x_T"].ToFloat32();
        var modelOut = npz["model_out"].ToFloat32();
        var noise = npz["step_noise"].ToFloat32();
        var xPrev = npz["x_prev"].ToFloat32();
        int rows = (int)npz["x_T"].Shape[0];
        int n = x.Length;
        var m = new float[n];
        var lv = new float[n];
        var x0 = new float[n];
        var next = new float[n];
        for (int s = 0; s < 10; s++)
        {
            int t = 9 - s;
            // the network is not run here: its recorded output on the recorded input stands in for it
            SamplingSteps.PMeanVariance(schedule, t, rows, C, x, modelOut.AsSpan(s * 2 * n, 2 * n), m, lv, x0);
            if (ddim) SamplingSteps.DdimStep(schedule, t, 0.0, x, x0, noise.AsSpan(s * n, n), next);
            else SamplingSteps.PSample(t, m, lv, noise.AsSpan(s * n, n), next);
            AssertNear($"chain x_prev step {s}", xPrev.AsSpan(s * n, n), next);
            (x, next) = (next, x);
        }
        AssertNear("final", npz["final"].ToFloat32(), x);
        var samples = npz["samples"].ToFloat32();
        AssertNear("samples", samples, x.AsSpan(0, samples.Length));
    }

    [Fact]
    public void DdimWithEtaAddsScaledNoiseExceptAtTheLastStep()
    {
        var schedule = DiffusionSchedule.Create("10");
        var rng = new Random(1);
        var x = Enumerable.Range(0, 64).Select(_ => (float)rng.NextDouble() * 4 - 2).ToArray();
        var x0 = Enumerable.Range(0, 64).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        var noise = Enumerable.Range(0, 64).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        var zero = new float[64];
        foreach (int t in new[] { 9, 4, 0 })
        {
            var det = new float[64];
            var sto = new float[64];
            var sto0 = new float[64];
            SamplingSteps.DdimStep(schedule, t, 0.0, x, x0, noise, det);
            SamplingSteps.DdimStep(schedule, t, 0.7, x, x0, noise, sto);
            SamplingSteps.DdimStep(schedule, t, 0.7, x, x0, zero, sto0);
            double ab = schedule.AlphasCumprod[t], abp = schedule.AlphasCumprodPrev[t];
            double sigma = 0.7 * Math.Sqrt((1 - abp) / (1 - ab)) * Math.Sqrt(1 - ab / abp);
            for (int i = 0; i < 64; i++)
            {
                double eps = (schedule.SqrtRecipAlphasCumprod[t] * x[i] - x0[i]) / schedule.SqrtRecipm1AlphasCumprod[t];
                double want = x0[i] * Math.Sqrt(abp) + Math.Sqrt(1 - abp - sigma * sigma) * eps + (t != 0 ? sigma * noise[i] : 0);
                Assert.True(Math.Abs(sto[i] - want) <= 1e-5 * Math.Max(1, Math.Abs(want)), $"t={t} i={i}: {sto[i]} vs {want}");
                Assert.Equal(sto0[i] + (t != 0 ? (float)(sigma * noise[i]) : 0f), sto[i], 1e-5f);
            }
            if (t == 0) Assert.Equal(sto0, sto); // the last step's noise is masked out
            else Assert.NotEqual(det, sto0); // σ also shrinks the direction term
        }
    }
}
