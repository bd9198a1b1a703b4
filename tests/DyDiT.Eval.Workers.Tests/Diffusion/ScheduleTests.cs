using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Diffusion;
using Xunit;

namespace DyDiT.Eval.Workers.Tests.Diffusion;

/// <summary>Every array of <c>fixtures/diffusion/schedule_*.npz</c> at relative error ≤ 1e-12 (integer arrays exact).</summary>
public sealed class ScheduleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public static TheoryData<string> Specs() => new() { "250", "50", "25", "1000", "10", "ddim25" };

    private static double[] F64(NpzArchive npz, string name) => MemoryMarshal.Cast<byte, double>(npz[name].ReadAllBytes()).ToArray();

    private static long[] I64(NpzArchive npz, string name) => MemoryMarshal.Cast<byte, long>(npz[name].ReadAllBytes()).ToArray();

    private void AssertClose(string name, double[] expected, IReadOnlyList<double> actual)
    {
        Assert.Equal(expected.Length, actual.Count);
        int exact = expected.Where((e, i) => e == actual[i]).Count();
        double worst = expected.Select((e, i) => e == actual[i] ? 0 : Math.Abs(actual[i] - e) / Math.Abs(e)).Max();
        output.WriteLine($"{name}: {exact}/{expected.Length} exact, max rel {worst:E2}");
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            Assert.True(err <= 1e-12 * Math.Abs(expected[i]), $"{name}[{i}]: got {actual[i]:R}, want {expected[i]:R} (rel {err / Math.Abs(expected[i]):E2})");
        }
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void CoefficientsMatchDiT(string spec)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("diffusion", $"schedule_{spec}.npz"));
        var s = DiffusionSchedule.Create(spec);
        var map = I64(npz, "timestep_map");
        Assert.Equal(map, s.TimestepMap.Select(v => (long)v));
        Assert.Equal(I64(npz, "use_timesteps_sorted"), Respacing.SpaceTimesteps(1000, spec).Select(v => (long)v));
        Assert.Equal(map.Length, s.NumTimesteps);

        var tables = new (string Name, IReadOnlyList<double> Values)[]
        {
            ("betas", s.Betas), ("log_betas", s.LogBetas), ("alphas_cumprod", s.AlphasCumprod),
            ("alphas_cumprod_prev", s.AlphasCumprodPrev), ("alphas_cumprod_next", s.AlphasCumprodNext),
            ("sqrt_alphas_cumprod", s.SqrtAlphasCumprod), ("sqrt_one_minus_alphas_cumprod", s.SqrtOneMinusAlphasCumprod),
            ("log_one_minus_alphas_cumprod", s.LogOneMinusAlphasCumprod), ("sqrt_recip_alphas_cumprod", s.SqrtRecipAlphasCumprod),
            ("sqrt_recipm1_alphas_cumprod", s.SqrtRecipm1AlphasCumprod), ("posterior_variance", s.PosteriorVariance),
            ("posterior_log_variance_clipped", s.PosteriorLogVarianceClipped), ("posterior_mean_coef1", s.PosteriorMeanCoef1),
            ("posterior_mean_coef2", s.PosteriorMeanCoef2),
        };
        foreach (var (name, values) in tables) AssertClose(name, F64(npz, name), values);

        // the base arrays are those of the 1000-step chain as SpacedDiffusion rebuilds it (betas via ᾱ ratios)
        var full = DiffusionSchedule.Create("1000");
        AssertClose("base_betas_1000", F64(npz, "base_betas_1000"), full.Betas);
        AssertClose("base_alphas_cumprod_1000", F64(npz, "base_alphas_cumprod_1000"), full.AlphasCumprod);
    }

    [Fact]
    public void LinearBetasAreNumPyLinspace()
    {
        // values from research/models.md §2.2 (NumPy: start + i·step, last element forced to stop)
        var b = DiffusionSchedule.LinearBetas(1000);
        Assert.Equal(1e-4, b[0]);
        Assert.Equal(1.1991991991991993e-4, b[1]);
        Assert.Equal(0.010059959959959959, b[500]);
        Assert.Equal(0.02, b[999]);
        Assert.Equal(4.035829765375676e-05, DiffusionSchedule.FromBetas(b).AlphasCumprod[999], 1e-12 * 4.035829765375676e-05);
    }

    [Fact]
    public void RespacingRoundsHalfToEven()
    {
        // stride 41.625: index 4 sits at 166.5, which Python rounds to 166
        var steps = Respacing.SpaceTimesteps(1000, "25");
        Assert.Equal(new[] { 0, 42, 83, 125, 166 }, steps.Take(5));
        Assert.Equal(999, steps[^1]);
        Assert.Equal(Enumerable.Range(0, 25).Select(k => 40 * k), Respacing.SpaceTimesteps(1000, "ddim25"));
        // several sections: 1000 = 334 + 333 + 333
        var multi = Respacing.SpaceTimesteps(1000, "2,3,1");
        Assert.Equal(new[] { 0, 333, 334, 500, 666, 667 }, multi);
        Assert.Throws<ArgumentException>(() => Respacing.SpaceTimesteps(10, "11"));
        Assert.Throws<FormatException>(() => Respacing.SpaceTimesteps(1000, "ddimx"));
        Assert.Throws<ArgumentException>(() => Respacing.SpaceTimesteps(1000, "ddim999"));
    }
}
