using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Networks.Layers;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Workers.Tests.Networks;

public sealed class TorchCpuExpTests(ITestOutputHelper output)
{
    /// <summary>SLEEF documents its expf_u10 as within 1 ulp; check that bound against exp in float64.</summary>
    [Fact]
    public void StaysWithinOneUlpOfTheTrueExp()
    {
        var rng = new Random(7);
        int inexact = 0;
        for (int i = 0; i < 200_000; i++)
        {
            float d = (float)(rng.NextDouble() * 184 - 100); // [−100, 84]: finite, normal results
            double truth = Math.Exp(d);
            float ours = TorchCpuExp.Exp(d);
            float rounded = (float)truth;
            double ulp = MathF.BitIncrement(rounded) - rounded;
            Assert.True(Math.Abs(ours - truth) <= ulp, $"exp({d:R}) = {ours:R}, true {truth:R}, ulp {ulp:R}");
            if (ours != rounded) inexact++;
        }
        output.WriteLine($"{inexact} of 200000 differ from the correctly rounded value");
        Assert.Equal(1f, TorchCpuExp.Exp(0f));
        Assert.Equal(0f, TorchCpuExp.Exp(-105f));
        Assert.Equal(float.PositiveInfinity, TorchCpuExp.Exp(101f));
        Assert.True(float.IsNaN(TorchCpuExp.Exp(float.NaN)));
    }

    /// <summary>
    /// At t = 999 an ulp of a frequency moves cos/sin of t·f by up to 6e-5, so the fixture's features pin down the
    /// frequencies the reference computed. With torch's exp they agree to float32 rounding of cos/sin (a few 1e-8);
    /// a correctly rounded exp is off by ~3e-5 there. README's tolerance (1e-5) is checked in DitTests.
    /// </summary>
    [Theory]
    [InlineData("dit_tiny_io.npz")]
    [InlineData("dit_tiny_p4_io.npz")]
    public void ReproducesTheReferenceFrequencies(string file)
    {
        using var io = NpzArchive.Open(Fixtures.Path("dit", file));
        long[] t = MemoryMarshal.Cast<byte, long>(io["t"].ReadAllBytes()).ToArray();
        float[] expected = io["t_freq"].ToFloat32();
        float[] actual = TimestepEmbedder.FrequencyFeatures(t);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs((double)expected[i] - actual[i]));
        output.WriteLine($"t_freq max |Δ| = {worst:E2}");
        Assert.True(worst <= 2.5e-7, $"t_freq max |Δ| = {worst}");
    }
}
