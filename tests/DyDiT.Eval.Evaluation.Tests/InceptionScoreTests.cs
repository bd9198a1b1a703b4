using System.Text.Json;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Metrics;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>Inception Score against fixtures/metrics (ADM, float32): ≤ 1e-5 relative, every listed split size.</summary>
public sealed class InceptionScoreTests
{
    private static JsonElement Manifest() =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Path("metrics", "manifest.json"))).RootElement.GetProperty("cases");

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var c in Manifest().EnumerateObject())
        {
            var node = c.Value.TryGetProperty("inception_score", out var v) ? v : c.Value.TryGetProperty("by_split_size", out _) ? c.Value : default;
            if (node.ValueKind != JsonValueKind.Object) continue;
            foreach (var split in node.GetProperty("by_split_size").EnumerateObject()) data.Add(c.Name, int.Parse(split.Name));
        }
        return data;
    }

    /// <summary>The unbiased logits of a case: stored quantised (is_logits) or pool · W (pool2048).</summary>
    private static (float[] Logits, int Classes) Logits(string caseName)
    {
        var file = Manifest().GetProperty(caseName).GetProperty("file").GetString()!;
        using var npz = NpzArchive.Open(Fixtures.Path("metrics", file));
        if (npz.Contains("logits_q"))
        {
            var q = npz["logits_q"].ToFloat32();
            float scale = npz["logits_scale"].ToFloat32()[0];
            for (int i = 0; i < q.Length; i++) q[i] *= scale;
            return (q, (int)npz["logits_q"].Shape[1]);
        }
        var w = npz["is_weight_q"].ToFloat32();
        float ws = npz["is_weight_scale"].ToFloat32()[0];
        for (int i = 0; i < w.Length; i++) w[i] *= ws;
        var acts = npz["acts_sample"].ToFloat32();
        int n = (int)npz["acts_sample"].Shape[0], d = (int)npz["acts_sample"].Shape[1], classes = (int)npz["is_weight_q"].Shape[1];
        var logits = new float[n * classes];
        for (int r = 0; r < n; r++)
            for (int j = 0; j < classes; j++)
            {
                double s = 0; // W = q·2^-3 and acts are multiples of 2^-10: every product and sum is exact in double
                for (int k = 0; k < d; k++) s += (double)acts[r * d + k] * w[k * classes + j];
                logits[r * classes + j] = (float)s;
            }
        return (logits, classes);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesAdm(string caseName, int splitSize)
    {
        var c = Manifest().GetProperty(caseName);
        var node = c.TryGetProperty("inception_score", out var v) ? v : c;
        var expected = node.GetProperty("by_split_size").GetProperty(splitSize.ToString());
        var (logits, classes) = Logits(caseName);
        var result = InceptionScore.FromLogits(logits, classes, splitSize);
        Assert.Equal(expected.GetProperty("split_sizes").EnumerateArray().Select(e => e.GetInt32()), result.SplitSizes);
        var perSplit = expected.GetProperty("per_split").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < perSplit.Length; i++)
            Assert.True(Math.Abs(result.SplitScores[i] - perSplit[i]) <= 1e-5 * perSplit[i], $"split {i}: {result.SplitScores[i]} vs {perSplit[i]}");
        double want = expected.GetProperty("inception_score").GetDouble();
        Assert.True(Math.Abs(result.Score - want) <= 1e-5 * want, $"IS {result.Score} vs {want}");
    }

    [Fact]
    public void SoftmaxMatchesTheStoredRows()
    {
        var (logits, classes) = Logits("pool2048");
        using var npz = NpzArchive.Open(Fixtures.Path("metrics", "pool2048.npz"));
        var stored = npz["softmax_sample_first16"].ToFloat32();
        var p = new float[classes];
        for (int r = 0; r < 16; r++)
        {
            InceptionScore.Softmax(logits.AsSpan(r * classes, classes), p);
            for (int j = 0; j < classes; j++)
                Assert.True(Math.Abs(p[j] - stored[r * classes + j]) <= 2e-7 * Math.Max(1e-3, stored[r * classes + j]) + 1e-12, $"row {r} class {j}");
        }
    }
}
