using System.Text.Json;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Metrics;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>
/// Precision/recall against fixtures/metrics (ADM's ManifoldEstimator with its fp16 DistanceBlock emulated).
/// Fixture README tolerances: precision and recall exact (counts / N) in fp16 mode; radii exact (fp16 values, or
/// float32 where a block fell back); the precision of every distance block as the manifest lists it.
/// </summary>
public sealed class PrecisionRecallTests : IDisposable
{
    private readonly IBackend _cpu = Backends.Create("cpu");

    public void Dispose() => _cpu.Dispose();

    private static JsonElement Cases() =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Path("metrics", "manifest.json"))).RootElement.GetProperty("cases");

    /// <summary>(case, manifest key, feature scale): every precision_recall entry of the manifest.</summary>
    public static TheoryData<string, string, float> PrCases()
    {
        var data = new TheoryData<string, string, float>();
        foreach (var c in Cases().EnumerateObject())
        {
            if (c.Value.TryGetProperty("precision_recall", out _)) data.Add(c.Name, "precision_recall", 1f);
            if (c.Value.TryGetProperty("precision_recall_acts_times_64", out _)) data.Add(c.Name, "precision_recall_acts_times_64", 64f);
        }
        return data;
    }

    private static (float[] Ref, float[] Sample, int Dim, NpzArchive Npz) Load(string caseName, float scale)
    {
        var npz = NpzArchive.Open(Fixtures.Path("metrics", Cases().GetProperty(caseName).GetProperty("file").GetString()!));
        float[] Scaled(string name)
        {
            var v = npz[name].ToFloat32();
            if (scale != 1f) for (int i = 0; i < v.Length; i++) v[i] *= scale; // ×64 is exact in float32
            return v;
        }
        return (Scaled("acts_ref"), Scaled("acts_sample"), (int)npz["acts_ref"].Shape[1], npz);
    }

    [Theory]
    [MemberData(nameof(PrCases))]
    public void Fp16ModeMatchesAdmExactly(string caseName, string key, float scale)
    {
        var expected = Cases().GetProperty(caseName).GetProperty(key).GetProperty("adm");
        var (reference, sample, dim, npz) = Load(caseName, scale);
        using (npz)
        {
            var result = PrecisionRecall.Compute(reference, sample, dim, _cpu);
            Assert.Equal(expected.GetProperty("precision").GetDouble(), result.Precision);
            Assert.Equal(expected.GetProperty("recall").GetDouble(), result.Recall);

            string suffix = scale == 64f ? "_x64" : "";
            if (npz.Contains("radii_ref" + suffix))
            {
                Assert.Equal(npz["radii_ref" + suffix].ToFloat32(), result.RadiiReference);
                Assert.Equal(npz["radii_sample" + suffix].ToFloat32(), result.RadiiSample);
            }
            Assert.Equal(expected.GetProperty("radii_ref_sum_f64").GetDouble(), result.RadiiReference.Sum(r => (double)r));
            Assert.Equal(expected.GetProperty("radii_sample_sum_f64").GetDouble(), result.RadiiSample.Sum(r => (double)r));

            var blocks = expected.GetProperty("distance_blocks").EnumerateArray().Select(b => (
                b.GetProperty("call").GetString()!, b.GetProperty("rows").GetInt32(), b.GetProperty("cols").GetInt32(),
                b.GetProperty("precision").GetString()!)).ToArray();
            var ours = result.Blocks.Select(b => (b.Call, b.Rows, b.Cols,
                b.Precision == BlockPrecision.Fp16 ? "fp16" : "fp32-fallback")).ToArray();
            Assert.Equal(blocks, ours);
        }
    }

    [Theory]
    [MemberData(nameof(PrCases))]
    public void Float32ModeMatchesAdmsCodeWithFloat32Distances(string caseName, string key, float scale)
    {
        if (!Cases().GetProperty(caseName).GetProperty(key).TryGetProperty("alt_all_float32", out var expected)) return;
        var (reference, sample, dim, npz) = Load(caseName, scale);
        using (npz)
        {
            var result = PrecisionRecall.Compute(reference, sample, dim, _cpu, DistanceMode.Float32);
            Assert.Equal(expected.GetProperty("precision").GetDouble(), result.Precision);
            Assert.Equal(expected.GetProperty("recall").GetDouble(), result.Recall);
            Assert.All(result.Blocks, b => Assert.Equal(BlockPrecision.Float32, b.Precision));
        }
    }

    /// <summary>
    /// The fast path (float32 GEMM estimates + exact recomputation of straddling pairs) must give exactly what the
    /// exact path gives. Quantised features make many distances tie or sit on fp16 rounding boundaries.
    /// </summary>
    [Theory]
    [InlineData(DistanceMode.Fp16, 0.25f, 300, 260, 96, 128, 2048)]
    [InlineData(DistanceMode.Fp16, 0.25f, 300, 260, 96, 128, 40)]
    [InlineData(DistanceMode.Fp16, 1f / 1024, 700, 900, 200, 512, 2048)]
    [InlineData(DistanceMode.Fp16, 1f / 1024, 700, 900, 200, 512, 100)]
    [InlineData(DistanceMode.Float32, 0.25f, 300, 260, 96, 128, 2048)]
    [InlineData(DistanceMode.Float32, 0f, 500, 450, 64, 200, 64)]
    public void FastPathEqualsExactPath(DistanceMode mode, float quantum, int nRef, int nSample, int dim, int blockSize, int tile)
    {
        var rng = new Random(1234 + dim);
        float[] Features(int n, float shift)
        {
            var v = new float[n * dim];
            for (int i = 0; i < v.Length; i++)
            {
                float x = MathF.Max(0, (float)(rng.NextDouble() * 2 - 0.6 + shift)) * 1.7f;
                v[i] = quantum > 0 ? MathF.Round(x / quantum) * quantum : x;
            }
            return v;
        }
        var reference = Features(nRef, 0);
        var sample = Features(nSample, 0.1f);
        // Small tiles split each block into several tiles, exercising mirrored tiles inside diagonal blocks.
        var fast = PrecisionRecall.Compute(reference, sample, dim, _cpu, mode, blockSize, null, exactOnly: false, tile);
        var exact = PrecisionRecall.Compute(reference, sample, dim, _cpu, mode, blockSize, null, exactOnly: true, 2048);
        Assert.Equal(exact.RadiiReference, fast.RadiiReference);
        Assert.Equal(exact.RadiiSample, fast.RadiiSample);
        Assert.Equal(exact.Precision, fast.Precision);
        Assert.Equal(exact.Recall, fast.Recall);
        Assert.True(fast.ExactPairs < exact.ExactPairs / 4, $"fast path recomputed {fast.ExactPairs} of {exact.ExactPairs} pairs");
    }

    /// <summary>An independent brute force: ADM's definitions on float64 distances of float64-exact features.</summary>
    [Fact]
    public void Float32ModeEqualsBruteForceOnExactlyRepresentableDistances()
    {
        // Features that are multiples of 1/8 below 4 in 16 dimensions: every distance is exact in float32 and float64.
        const int dim = 16, nRef = 90, nSample = 70;
        var rng = new Random(7);
        float[] F(int n) => Enumerable.Range(0, n * dim).Select(_ => rng.Next(0, 32) / 8f).ToArray();
        var reference = F(nRef);
        var sample = F(nSample);
        double D(float[] a, int i, float[] b, int j)
        {
            double s = 0;
            for (int k = 0; k < dim; k++) { double t = a[i * dim + k] - b[j * dim + k]; s += t * t; }
            return s;
        }
        double[] Radii(float[] x, int n) => Enumerable.Range(0, n)
            .Select(i => Enumerable.Range(0, n).Select(j => D(x, i, x, j)).OrderBy(v => v).ElementAt(3)).ToArray();
        var rr = Radii(reference, nRef);
        var rs = Radii(sample, nSample);
        double precision = Enumerable.Range(0, nSample).Count(j => Enumerable.Range(0, nRef).Any(i => D(reference, i, sample, j) <= rr[i])) / (double)nSample;
        double recall = Enumerable.Range(0, nRef).Count(i => Enumerable.Range(0, nSample).Any(j => D(reference, i, sample, j) <= rs[j])) / (double)nRef;

        var result = PrecisionRecall.Compute(reference, sample, dim, _cpu, DistanceMode.Float32, blockSize: 32);
        Assert.Equal(rr.Select(v => (float)v), result.RadiiReference);
        Assert.Equal(rs.Select(v => (float)v), result.RadiiSample);
        Assert.Equal(precision, result.Precision);
        Assert.Equal(recall, result.Recall);
    }

    [Fact]
    public void TooFewFeaturesIsAClearError()
    {
        var ex = Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(new float[3 * 2], new float[10 * 2], 2, _cpu));
        Assert.Contains("at least 4 reference features", ex.Message);
    }

    [Fact]
    public void RoundToHalfIsCorrectlyRoundedFromDouble()
    {
        // Independent oracle: the two fp16 neighbours of x found by enumerating all finite fp16 values.
        var halves = Enumerable.Range(0, 0x7C00).Select(b => (double)BitConverter.UInt16BitsToHalf((ushort)b)).ToArray();
        float Oracle(double x)
        {
            double a = Math.Abs(x);
            if (a >= 65520) return x > 0 ? float.PositiveInfinity : float.NegativeInfinity;
            int hi = Array.BinarySearch(halves, a);
            if (hi >= 0) return (float)Math.CopySign(halves[hi], x);
            hi = ~hi;
            if (hi == halves.Length) return (float)Math.CopySign(65504.0, x);
            double up = halves[hi], down = halves[hi - 1];
            double pick = a - down < up - a ? down : a - down > up - a ? up : ((hi - 1) % 2 == 0 ? down : up);
            return (float)Math.CopySign(pick, x);
        }
        var rng = new Random(3);
        var xs = new List<double> { 0, -0.0, 65504, 65519.99, 65520, 1e-9, 2.9802322387695312e-08, 5.960464477539063e-08, 1e5 };
        for (int i = 0; i < 1 << 14; i++) xs.Add(halves[i] + (halves[i + 1] - halves[i]) / 2); // exact midpoints
        for (int i = 0; i < 200_000; i++) xs.Add((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 18)));
        foreach (var x in xs)
            Assert.True(Oracle(x).Equals(DistanceArithmetic.RoundToHalf(x)), $"x={x:R}: expected {Oracle(x)}, got {DistanceArithmetic.RoundToHalf(x)}");
    }
}
