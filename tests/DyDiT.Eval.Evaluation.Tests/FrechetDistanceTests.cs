using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Metrics;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>
/// Statistics and FID/sFID against fixtures/metrics (ADM's evaluator.py). Tolerances from the fixture README:
/// mu 1e-5 relative / 2e-6 absolute, sigma ~1e-12 relative, FID ≤ 1e-5 relative (≤ 1e-6 on the eps path).
/// </summary>
public sealed class FrechetDistanceTests
{

    private static JsonElement Manifest() =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Path("metrics", "manifest.json"))).RootElement.GetProperty("cases");

    public static TheoryData<string> CasesWith(string key)
    {
        var data = new TheoryData<string>();
        foreach (var c in Manifest().EnumerateObject())
            if (c.Value.TryGetProperty(key, out _)) data.Add(c.Name);
        return data;
    }

    public static TheoryData<string> FidCases() => CasesWith("fid");

    public static TheoryData<string> SfidCases() => CasesWith("sfid");

    private (FeatureStatistics Sample, FeatureStatistics Ref, NpzArchive Npz) Load(string caseName)
    {
        var file = Manifest().GetProperty(caseName).GetProperty("file").GetString()!;
        var npz = NpzArchive.Open(Fixtures.Path("metrics", file));
        FeatureStatistics Stats(string name)
        {
            var a = npz[name];
            return StatisticsAccumulator.Compute(a.ToFloat32(), (int)a.Shape[1]);
        }
        return (Stats("acts_sample"), Stats("acts_ref"), npz);
    }

    private static void AssertRelative(double expected, double actual, double tolerance, string what) =>
        Assert.True(Math.Abs(actual - expected) <= tolerance * Math.Abs(expected), $"{what}: expected {expected}, got {actual} (rel {Math.Abs(actual - expected) / Math.Abs(expected):e2})");

    [Theory]
    [MemberData(nameof(FidCases))]
    [MemberData(nameof(SfidCases))]
    public void StatisticsMatchAdm(string caseName)
    {
        var c = Manifest().GetProperty(caseName);
        var (sample, reference, npz) = Load(caseName);
        using (npz)
        {
            foreach (var (side, stats) in new[] { ("sample", sample), ("ref", reference) })
            {
                var expected = c.GetProperty("stats_" + side);
                Assert.Equal("float32", expected.GetProperty("mu_dtype").GetString());
                var mu = npz["mu_" + side].ToFloat32();
                for (int i = 0; i < mu.Length; i++)
                    Assert.True(Math.Abs(mu[i] - stats.Mu[i]) <= Math.Max(2e-6, 1e-5 * Math.Abs(mu[i])), $"{side} mu[{i}]: {mu[i]} vs {stats.Mu[i]}");
                AssertRelative(expected.GetProperty("sigma_trace").GetDouble(), stats.SigmaTrace(), 1e-12, side + " trace");
                double fro = Math.Sqrt(stats.Sigma.Sum(v => v * v));
                AssertRelative(expected.GetProperty("sigma_fro").GetDouble(), fro, 1e-12, side + " frobenius");
                if (npz.Contains($"sigma_{side}_rows0to7"))
                {
                    var rows = npz[$"sigma_{side}_rows0to7"].ReadAllBytes();
                    for (int i = 0; i < 8 * stats.Dim; i++)
                    {
                        double e = BitConverter.ToDouble(rows, i * 8);
                        Assert.True(Math.Abs(e - stats.Sigma[i]) <= 1e-12 * Math.Max(1e-3, Math.Abs(e)) + 1e-15, $"{side} sigma[{i}]");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(FidCases))]
    [MemberData(nameof(SfidCases))]
    public void DistanceMatchesAdm(string caseName)
    {
        var c = Manifest().GetProperty(caseName);
        var expected = c.TryGetProperty("fid", out var f) ? f : c.GetProperty("sfid");
        var (sample, reference, npz) = Load(caseName);
        npz.Dispose();
        var result = FrechetDistance.Compute(sample, reference);
        bool eps = expected.GetProperty("eps_path_taken").GetBoolean();
        Assert.Equal(eps, result.EpsilonApplied);
        Assert.Equal(eps ? FrechetDistance.EpsilonWarning : null, result.Warning);
        AssertRelative(expected.GetProperty("fid_adm").GetDouble(), result.Distance, eps ? 1e-6 : 1e-5, caseName);
        AssertRelative(expected.GetProperty("mean_term_adm").GetDouble(), result.MeanTerm, 1e-6, caseName + " mean term");
    }

    [Fact]
    public void DeadUnitsAreFoundWhereTheManifestSaysSo()
    {
        foreach (var c in Manifest().EnumerateObject().Where(c => c.Value.TryGetProperty("dead_units", out _)))
        {
            var (sample, reference, npz) = Load(c.Name);
            npz.Dispose();
            var dead = c.Value.GetProperty("dead_units");
            int[] Expect(string key) => dead.ValueKind == JsonValueKind.Object && dead.TryGetProperty(key, out var v)
                ? v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : [v.GetInt32()]
                : [];
            Assert.Equal(Expect("sample"), sample.DeadUnits());
            Assert.Equal(Expect("ref"), reference.DeadUnits());
        }
    }

    [Fact]
    public void BatchingDoesNotChangeStatistics()
    {
        using var npz = NpzArchive.Open(Fixtures.Path("metrics", "small64.npz"));
        var acts = npz["acts_ref"].ToFloat32();
        var whole = StatisticsAccumulator.Compute(acts, 64);
        var acc = new StatisticsAccumulator(64);
        int pos = 0; // shards of varying size, as they arrive from workers
        foreach (int rows in new[] { 1, 7, 500, 1000, 1492 })
        {
            acc.Add(acts.AsSpan(pos * 64, rows * 64));
            pos += rows;
        }
        var sharded = acc.Finish();
        Assert.Equal(whole.Mu, sharded.Mu);
        for (int i = 0; i < whole.Sigma.Length; i++) Assert.True(Math.Abs(whole.Sigma[i] - sharded.Sigma[i]) <= 1e-13);
    }
}
