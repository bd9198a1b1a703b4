using System.Runtime.InteropServices;
using DyDiT.Eval.Workers.Noise;
using Xunit;

namespace DyDiT.Eval.Workers.Tests.Noise;

public sealed class PhiloxAndPerSampleTests
{
    // Random123 kat_vectors, "philox4x32 10" lines: counter (4 words), key (2 words) -> output (4 words).
    [Theory]
    [InlineData(0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void PhiloxMatchesRandom123KnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint r0, uint r1, uint r2, uint r3)
    {
        Philox4x32.Block(ref c0, ref c1, ref c2, ref c3, k0, k1);
        Assert.Equal(new[] { r0, r1, r2, r3 }, new[] { c0, c1, c2, c3 });
    }

    private const int Row = 4 * 8 * 8 + 3; // odd on purpose: the last normal of a row uses half a Box-Muller pair
    private const int Samples = 16;
    private const int Steps = 3;

    private static byte[] Generate(PerSampleNoise noise, int[] batchSizes)
    {
        var latents = new float[Samples * Row];
        var labels = new long[Samples];
        var steps = new float[Steps * 2 * Samples * Row]; // per step: cond rows of all samples, then their guidance copies
        int start = 0;
        foreach (int b in batchSizes)
        {
            var idx = Enumerable.Range(start, b).Select(i => (long)i).ToArray();
            var z = new float[b * Row];
            noise.InitialLatents(idx, z);
            z.CopyTo(latents, start * Row);
            var y = new long[b];
            noise.Labels(idx, 1000, y);
            y.CopyTo(labels, start);
            for (int s = 0; s < Steps; s++)
            {
                var e = new float[2 * b * Row];
                noise.StepNoise(idx, s, guidanceBatch: true, e);
                int baseOffset = s * 2 * Samples * Row;
                Array.Copy(e, 0, steps, baseOffset + start * Row, b * Row);
                Array.Copy(e, b * Row, steps, baseOffset + (Samples + start) * Row, b * Row);
            }
            start += b;
        }
        Assert.Equal(Samples, start);
        return [.. MemoryMarshal.AsBytes<float>(latents), .. MemoryMarshal.AsBytes<long>(labels), .. MemoryMarshal.AsBytes<float>(steps)];
    }

    [Fact]
    public void SampleValuesDoNotDependOnTheBatching()
    {
        var noise = new PerSampleNoise(20240601);
        var whole = Generate(noise, [16]);
        var threes = Generate(noise, [3, 3, 3, 3, 3, 1]);
        var single = Generate(noise, Enumerable.Repeat(1, 16).ToArray());
        Assert.Equal(whole, threes);
        Assert.Equal(whole, single);

        // and shuffled sample order within a batch only permutes rows
        var idx = new long[] { 7, 2, 11 };
        var z = new float[3 * Row];
        noise.InitialLatents(idx, z);
        var lone = new float[Row];
        noise.InitialLatents([11], lone);
        Assert.Equal(lone, z.AsSpan(2 * Row, Row).ToArray());
    }

    [Fact]
    public void StreamsSeedsAndStepsAreDistinct()
    {
        var a = new PerSampleNoise(1);
        var b = new PerSampleNoise(2);
        float[] Draw(PerSampleNoise n, long sample, PerSampleNoise.Stream stream, int step)
        {
            var d = new float[64];
            n.Normals(sample, stream, step, d);
            return d;
        }
        var reference = Draw(a, 5, PerSampleNoise.Stream.Step, 3);
        Assert.NotEqual(reference, Draw(b, 5, PerSampleNoise.Stream.Step, 3));
        Assert.NotEqual(reference, Draw(a, 6, PerSampleNoise.Stream.Step, 3));
        Assert.NotEqual(reference, Draw(a, 5, PerSampleNoise.Stream.StepGuidanceCopy, 3));
        Assert.NotEqual(reference, Draw(a, 5, PerSampleNoise.Stream.Step, 4));
        Assert.NotEqual(reference, Draw(a, 5L + (1L << 32), PerSampleNoise.Stream.Step, 3));
        Assert.Equal(reference, Draw(new PerSampleNoise(1), 5, PerSampleNoise.Stream.Step, 3));
        // a longer request extends a shorter one
        var longer = new float[65];
        a.Normals(5, PerSampleNoise.Stream.Step, 3, longer);
        Assert.Equal(reference, longer.AsSpan(0, 64).ToArray());
    }

    [Fact]
    public void NormalsAndLabelsHaveTheRightDistribution()
    {
        var noise = new PerSampleNoise(7);
        const int n = 1 << 18;
        var v = new float[n];
        noise.Normals(0, PerSampleNoise.Stream.InitialLatent, 0, v);
        double mean = v.Average(x => (double)x);
        double var = v.Average(x => ((double)x - mean) * ((double)x - mean));
        double kurt = v.Average(x => Math.Pow(x - mean, 4)) / (var * var);
        Assert.InRange(mean, -0.01, 0.01);   // 5 sigma = 0.0098
        Assert.InRange(var, 0.986, 1.014);   // 5 sigma ~ 0.014
        Assert.InRange(kurt, 2.9, 3.1);
        Assert.InRange(v.Count(x => Math.Abs(x) > 1.959964) / (double)n, 0.047, 0.053);

        var counts = new int[10];
        for (long s = 0; s < 20000; s++) counts[noise.Label(s, 10)]++;
        double chi2 = counts.Sum(c => (c - 2000.0) * (c - 2000.0) / 2000.0);
        Assert.True(chi2 < 30, $"chi2 {chi2} over 9 degrees of freedom");
        for (long s = 0; s < 1000; s++) Assert.InRange(noise.Label(s, 1000), 0, 999);
    }

    [Fact]
    public void OwnLogAndSinCosAgreeWithTheLibraryToAFewUlps()
    {
        var rng = new Random(3);
        for (int i = 0; i < 200000; i++)
        {
            double u = i < 100 ? i / 100.0 : rng.NextDouble();
            double x = i % 3 == 0 ? 1.0 - u : Math.Pow(2, -rng.Next(1, 60)) * (1 + u);
            if (x <= 0) continue;
            double l = DeterministicMath.Log(x);
            double want = Math.Log(x);
            Assert.True(Math.Abs(l - want) <= 4e-16 * Math.Max(Math.Abs(want), 1e-300) || Math.Abs(l - want) <= 1e-300, $"log({x:R}) = {l:R}, libm {want:R}");
            DeterministicMath.SinCos2Pi(u, out double s, out double c);
            Assert.True(Math.Abs(s - Math.Sin(2 * Math.PI * u)) <= 2e-15, $"sin(2π·{u:R})");
            Assert.True(Math.Abs(c - Math.Cos(2 * Math.PI * u)) <= 2e-15, $"cos(2π·{u:R})");
        }
        Assert.Equal(0.0, DeterministicMath.Log(1.0));
    }

    /// <summary>
    /// The per-sample stream is part of a run's contract (resumed or re-leased shards must regenerate the same bytes).
    /// Checked against an independent rendering of the documented construction: Philox4x32-10 (its known answers are
    /// tested above) with counter (block, step, sample, stream·2²⁴), two 53-bit uniforms per block, Box-Muller in
    /// float64 with the C library's log/sin/cos (ours are IEEE-only; they may differ by an ulp in float64, which after
    /// rounding to float32 allows at most one float32 ulp), and labels by rejection on 64-bit words.
    /// </summary>
    [Theory]
    [InlineData(0UL, 0L, PerSampleNoise.Stream.InitialLatent, 0)]
    [InlineData(1234567UL, 49_999L, PerSampleNoise.Stream.Step, 249)]
    [InlineData(0xDEADBEEF_0000_0001UL, (1L << 40) + 3, PerSampleNoise.Stream.StepGuidanceCopy, 7)]
    public void PerSampleStreamFollowsItsDocumentedConstruction(ulong seed, long sample, PerSampleNoise.Stream stream, int step)
    {
        var ours = new float[9];
        new PerSampleNoise(seed).Normals(sample, stream, step, ours);
        for (int i = 0; i < ours.Length; i += 2)
        {
            uint w0 = (uint)(i / 2), w1 = (uint)step, w2 = (uint)sample, w3 = ((uint)stream << 24) | (uint)(sample >> 32);
            Philox4x32.Block(ref w0, ref w1, ref w2, ref w3, (uint)seed, (uint)(seed >> 32));
            double u1 = ((((ulong)w0 << 32) | w1) >> 11) / 9007199254740992.0;
            double u2 = ((((ulong)w2 << 32) | w3) >> 11) / 9007199254740992.0;
            double r = Math.Sqrt(-2 * Math.Log(1 - u1));
            float cos = (float)(r * Math.Cos(2 * Math.PI * u2)), sin = (float)(r * Math.Sin(2 * Math.PI * u2));
            Assert.True(WithinOneUlp(cos, ours[i]), $"normal {i}: {ours[i]} vs {cos}");
            if (i + 1 < ours.Length) Assert.True(WithinOneUlp(sin, ours[i + 1]), $"normal {i + 1}: {ours[i + 1]} vs {sin}");
        }

        // Label: first 64-bit word of the label stream below the largest multiple of 1000, modulo 1000.
        uint c0 = 0, c1 = 0, c2 = (uint)sample, c3 = ((uint)PerSampleNoise.Stream.Label << 24) | (uint)(sample >> 32);
        Philox4x32.Block(ref c0, ref c1, ref c2, ref c3, (uint)seed, (uint)(seed >> 32));
        ulong a = ((ulong)c0 << 32) | c1, b = ((ulong)c2 << 32) | c3;
        ulong limit = ulong.MaxValue / 1000 * 1000 - 1;
        Assert.True(a <= limit || b <= limit, "both words rejected: pick another case");
        Assert.Equal((long)((a <= limit ? a : b) % 1000), new PerSampleNoise(seed).Label(sample, 1000));
    }

    private static bool WithinOneUlp(float expected, float actual) =>
        expected == actual || MathF.BitIncrement(expected) == actual || MathF.BitDecrement(expected) == actual;
}
