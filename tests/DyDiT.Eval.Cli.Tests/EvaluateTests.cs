using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>dydit-eval evaluate</c> end to end on files built from fixtures/metrics (ADM's numbers): FID/sFID within
/// 1e-5 relative, IS within 1e-5 relative, precision/recall exact in fp16 mode, the JSON contract, and bad input.
/// </summary>
public sealed class EvaluateTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-evaluate-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static JsonElement Case(string name) =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Path("metrics", "manifest.json"))).RootElement.GetProperty("cases").GetProperty(name);

    private static NpzArchive Fixture(string name) => NpzArchive.Open(Fixtures.Path("metrics", name + ".npz"));

    private string Write(string name, params (string Array, DType DType, long[] Shape, byte[] Bytes)[] arrays) =>
        NpzFiles.Write(_dir.FullName, name, arrays);

    private static (string Array, DType DType, long[] Shape, byte[] Bytes) As(string name, StoredTensor t) => NpzFiles.As(name, t);

    private static (string Array, DType DType, long[] Shape, byte[] Bytes) Floats(string name, float[] values, params long[] shape) =>
        (name, DType.Float32, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private (CliProcess.Result Result, JsonElement Json, string[] Lines) Evaluate(string reference, string sample, params string[] extra)
    {
        var json = Path.Combine(_dir.FullName, $"out-{Guid.NewGuid():N}.json");
        var r = CliProcess.Run(["evaluate", "--ref", reference, "--sample", sample, "--json", json, .. extra]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return (r, JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone(), lines);
    }

    private static void Relative(double expected, JsonElement actual, double tolerance) =>
        Assert.True(Math.Abs(actual.GetDouble() - expected) <= tolerance * Math.Abs(expected), $"expected {expected}, got {actual}");

    [Fact]
    public void FeaturesGiveAdmsFidPrecisionAndRecall()
    {
        var c = Case("small64");
        string reference, sample;
        using (var npz = Fixture("small64"))
        {
            reference = Write("ref.npz", As("pool", npz["acts_ref"]));
            sample = Write("sample.npz", As("pool", npz["acts_sample"]));
        }
        var (_, json, lines) = Evaluate(reference, sample);
        Relative(c.GetProperty("fid").GetProperty("fid_adm").GetDouble(), json.GetProperty("fid"), 1e-5);
        Assert.Equal(c.GetProperty("precision_recall").GetProperty("adm").GetProperty("precision").GetDouble(), json.GetProperty("precision").GetDouble());
        Assert.Equal(c.GetProperty("precision_recall").GetProperty("adm").GetProperty("recall").GetDouble(), json.GetProperty("recall").GetDouble());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("inception_score").ValueKind);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("sfid").ValueKind);
        Assert.Equal(c.GetProperty("arrays").GetProperty("acts_ref")[0].GetInt32(), json.GetProperty("n_ref").GetInt32());
        Assert.Equal(c.GetProperty("arrays").GetProperty("acts_sample")[0].GetInt32(), json.GetProperty("n_sample").GetInt32());

        // ADM's five lines, in ADM's order, numbers as Python prints them; unavailable ones say why.
        Assert.Equal(5, lines.Length);
        Assert.StartsWith("Inception Score: n/a (", lines[0]);
        Assert.Equal("FID: " + Evaluation.Metrics.PythonFloat.Repr(json.GetProperty("fid").GetDouble()), lines[1]);
        Assert.StartsWith("sFID: n/a (", lines[2]);
        Assert.Equal("Precision: " + Evaluation.Metrics.PythonFloat.Repr(json.GetProperty("precision").GetDouble()), lines[3]);
        Assert.Equal("Recall: " + Evaluation.Metrics.PythonFloat.Repr(json.GetProperty("recall").GetDouble()), lines[4]);

        // float32 distances: the manifest's all-float32 evaluation
        var (_, f32, _) = Evaluate(reference, sample, "--pr-distances", "float32");
        Assert.Equal(c.GetProperty("precision_recall").GetProperty("alt_all_float32").GetProperty("precision").GetDouble(), f32.GetProperty("precision").GetDouble());
        Assert.Equal(c.GetProperty("precision_recall").GetProperty("alt_all_float32").GetProperty("recall").GetDouble(), f32.GetProperty("recall").GetDouble());
    }

    [Fact]
    public void LogitsGiveAdmsInceptionScore()
    {
        var c = Case("pool2048");
        string reference, sample;
        using (var npz = Fixture("pool2048"))
        {
            var w = npz["is_weight_q"].ToFloat32();
            float scale = npz["is_weight_scale"].ToFloat32()[0];
            var acts = npz["acts_sample"].ToFloat32();
            int n = (int)npz["acts_sample"].Shape[0], d = (int)npz["acts_sample"].Shape[1], classes = (int)npz["is_weight_q"].Shape[1];
            var logits = new float[n * classes];
            for (int r = 0; r < n; r++)
                for (int j = 0; j < classes; j++)
                {
                    double s = 0;
                    for (int k = 0; k < d; k++) s += (double)acts[r * d + k] * w[k * classes + j] * scale;
                    logits[r * classes + j] = (float)s;
                }
            reference = Write("ref.npz", As("pool", npz["acts_ref"]));
            sample = Write("sample.npz", As("pool", npz["acts_sample"]), Floats("logits", logits, n, classes));
        }
        var bysplit = c.GetProperty("inception_score").GetProperty("by_split_size");
        var (_, json, _) = Evaluate(reference, sample);
        Relative(bysplit.GetProperty("5000").GetProperty("inception_score").GetDouble(), json.GetProperty("inception_score"), 1e-5);
        Relative(c.GetProperty("fid").GetProperty("fid_adm").GetDouble(), json.GetProperty("fid"), 1e-5);
        var (_, json256, _) = Evaluate(reference, sample, "--split-size", "256");
        Relative(bysplit.GetProperty("256").GetProperty("inception_score").GetDouble(), json256.GetProperty("inception_score"), 1e-5);
    }

    [Fact]
    public void StatisticsFilesGiveFidAndSfid()
    {
        var c = Case("spatial2023");
        string reference, sample;
        using (var npz = Fixture("spatial2023"))
        {
            // ADM's reference layout: statistics only; the sample side as features with a spatial array.
            var refStats = Evaluation.Metrics.StatisticsAccumulator.Compute(npz["acts_ref"].ToFloat32(), 2023);
            reference = Write("ref_stats.npz",
                As("mu", npz["mu_ref"]),
                ("sigma", DType.Float64, [2023, 2023], System.Runtime.InteropServices.MemoryMarshal.AsBytes(refStats.Sigma.AsSpan()).ToArray()),
                As("mu_s", npz["mu_ref"]),
                ("sigma_s", DType.Float64, [2023, 2023], System.Runtime.InteropServices.MemoryMarshal.AsBytes(refStats.Sigma.AsSpan()).ToArray()));
            sample = Write("sample.npz", As("pool", npz["acts_sample"]), As("spatial", npz["acts_sample"]));
        }
        var (_, json, lines) = Evaluate(reference, sample);
        double expected = c.GetProperty("sfid").GetProperty("fid_adm").GetDouble();
        Relative(expected, json.GetProperty("sfid"), 1e-5);
        Relative(expected, json.GetProperty("fid"), 1e-5);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("precision").ValueKind);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("n_ref").ValueKind);
        Assert.StartsWith("Precision: n/a (reference side has statistics only", lines[3]);
    }

    [Fact]
    public void EpsilonPathWarns()
    {
        var c = Case("singular_eps64");
        string reference, sample;
        using (var npz = Fixture("singular_eps64"))
        {
            reference = Write("ref.npz", As("pool", npz["acts_ref"]));
            sample = Write("sample.npz", As("pool", npz["acts_sample"]));
        }
        var (r, json, _) = Evaluate(reference, sample);
        Relative(c.GetProperty("fid").GetProperty("fid_adm").GetDouble(), json.GetProperty("fid"), 1e-6);
        Assert.Contains("adding 1e-06 to diagonal of cov estimates", r.Stderr);
    }

    [Fact]
    public void BadInputExitsOneNamingFileAndArray()
    {
        using var npz = Fixture("small64");
        var good = Write("good.npz", As("pool", npz["acts_ref"]));

        void Fails(string file, params string[] expectedFragments)
        {
            var r = CliProcess.Run("evaluate", "--ref", good, "--sample", file);
            Assert.True(r.ExitCode == 1, $"{file}: exit {r.ExitCode}, {r.Stderr}");
            var last = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
            Assert.Contains(file, last);
            foreach (var f in expectedFragments) Assert.Contains(f, last);
            Assert.DoesNotContain("   at ", r.Stderr);
        }

        Fails(Write("narrow.npz", Floats("pool", new float[10 * 8], 10, 8)), "'pool'", "8");
        var withNan = new float[4 * 64];
        withNan[70] = float.NaN;
        Fails(Write("nan.npz", Floats("pool", withNan, 4, 64)), "'pool'", "non-finite");
        Fails(Write("one.npz", Floats("pool", new float[64], 1, 64)), "'pool'", "at least 2");
        var asym = new double[4] { 1, 0.5, 0.25, 1 };
        Fails(Write("asym.npz", Floats("mu", new float[2], 2),
            ("sigma", DType.Float64, [2, 2], System.Runtime.InteropServices.MemoryMarshal.AsBytes(asym.AsSpan()).ToArray())), "'sigma'", "symmetric");
        Fails(Write("images.npz", ("arr_0", DType.UInt8, [2, 4, 4, 3], new byte[96])), "--inception");

        Assert.Equal(2, CliProcess.Run("evaluate", "--ref", good, "--sample", good, "--pr-distances", "fp8").ExitCode);
        Assert.Equal(2, CliProcess.Run("evaluate", "--ref", good).ExitCode);
        Assert.Equal(2, CliProcess.Run("evaluate", "--ref", good, "--sample", good, "--split-size", "0").ExitCode);
    }
}
