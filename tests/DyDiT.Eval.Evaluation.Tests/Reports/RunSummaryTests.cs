using System.Text.Json;
using System.Globalization;
using DyDiT.Eval.Evaluation.Reports;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Tests.Common.Reports;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests.Reports;

/// <summary>run-summary.json, the contract between <c>run</c> (writer) and <c>report</c> (reader): names, nulls, checks.</summary>
public sealed class RunSummaryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-summary-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private string WriteText(string text)
    {
        var p = PathOf($"summary-{Guid.NewGuid():N}.json");
        File.WriteAllText(p, text);
        return p;
    }

    private const string Minimal = """{ "run_id": "r1", "model": "DiT-XL/2", "net": "dit", "num_samples": 16 }""";

    [Fact]
    public void SaveWritesEveryKeyOfTheContractInSnakeCase()
    {
        var p = PathOf(RunSummary.FileName);
        SyntheticRuns.DyDit(16, 8).Save(p);
        using var doc = JsonDocument.Parse(File.ReadAllText(p));
        string[] expected =
        [
            "run_id", "name", "model", "net", "checkpoint", "checkpoint_sha256", "lambda", "random_weights", "num_samples", "seed",
            "cfg_scale", "steps", "sampler", "labels", "image_size", "shard_size", "workers", "device", "generation_seconds",
            "wall_seconds", "macs_per_forward", "dense_macs_per_forward", "step_macs_per_forward", "step_activity", "samples_file",
            "reference", "inception", "metrics", "evaluation_text", "created_at",
        ];
        Assert.Equal(expected.Order(), doc.RootElement.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(["groups", "heads", "tokens"], doc.RootElement.GetProperty("step_activity").EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(["fid", "inception_score", "precision", "recall", "sfid"], doc.RootElement.GetProperty("metrics").EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(0.7, doc.RootElement.GetProperty("lambda").GetDouble());
        Assert.Equal("2025-03-02T08:30:00+01:00", doc.RootElement.GetProperty("created_at").GetString());
        Assert.Contains("λ", File.ReadAllText(p)); // readable, not \u03BB
    }

    [Fact]
    public void SaveThenLoadGivesTheSameSummary()
    {
        var p = PathOf(RunSummary.FileName);
        var original = SyntheticRuns.DyDit(16, 8);
        original.Save(p);
        var loaded = RunSummary.Load(p);
        Assert.Equal(JsonSerializer.Serialize(original), JsonSerializer.Serialize(loaded));
        Assert.Equal(original.StepActivity!.Heads, loaded.StepActivity!.Heads);
        Assert.Equal(original.EvaluationText, loaded.EvaluationText);
        Assert.Equal(original.CreatedAt, loaded.CreatedAt);
        Assert.Equal([PathOf(RunSummary.FileName)], _dir.GetFiles().Select(f => f.FullName)); // no temporary left
    }

    [Fact]
    public void MissingOptionalKeysReadAsNull()
    {
        var s = RunSummary.Load(WriteText(Minimal));
        Assert.Equal(("r1", "DiT-XL/2", "dit", 16), (s.RunId, s.Model, s.Net, s.NumSamples));
        Assert.Null(s.Name);
        Assert.Null(s.Lambda);
        Assert.Null(s.DenseMacsPerForward);
        Assert.Null(s.StepActivity);
        Assert.Null(s.Metrics);
        Assert.Null(s.EvaluationText);
        Assert.Null(s.Reference);
        Assert.Null(s.Inception);
        Assert.Null(s.CheckpointSha256);
        Assert.Null(s.CreatedAt);
        Assert.False(s.RandomWeights);
        Assert.Empty(s.StepMacsPerForward);
        Assert.Equal("samples.npz", s.SamplesFile);

        var nulls = RunSummary.Load(WriteText("""
            { "run_id": "r1", "model": "DiT-XL/2", "net": "dydit", "num_samples": 16, "lambda": null, "metrics": { "fid": 3.5, "recall": null },
              "step_activity": { "heads": [0.5, 0.25] } }
            """));
        Assert.Null(nulls.Lambda);
        Assert.Equal(3.5, nulls.Metrics!.Fid);
        Assert.Null(nulls.Metrics.Recall);
        Assert.Null(nulls.Metrics.Sfid);
        Assert.Equal([0.5, 0.25], nulls.StepActivity!.Heads!);
        Assert.Null(nulls.StepActivity.Tokens);
    }

    [Theory]
    [InlineData("""{ "model": "DiT-XL/2", "net": "dit", "num_samples": 16 }""", "run_id")]
    [InlineData("""{ "run_id": "r1", "model": "DiT-XL/2", "net": "dit" }""", "num_samples")]
    [InlineData("""{ "run_id": "r1", "model": "DiT-XL/2", "net": "unet", "num_samples": 16 }""", "net is 'unet'")]
    [InlineData("""{ "run_id": "r1", "model": "DiT-XL/2", "net": "dit", "num_samples": 0 }""", "num_samples is 0")]
    [InlineData("""{ "run_id": "r1", "model": "DiT-XL/2", "net": "dit", "num_samples": 16, "generation_seconds": -1 }""", "generation_seconds")]
    [InlineData("""{ "run_id": "r1", "model": "DiT-XL/2", "net": "dit", "num_samples": "many" }""", "num_samples")]
    [InlineData("""{ "run_id": "r1", "model": "DiT-XL/2", "net": "dit", "num_samples": 16, "samples_file": null }""", "samples_file")]
    [InlineData("""[1, 2]""", "RunSummary")]
    [InlineData("""{ "run_id": "r1", """, "run-summary.json")]
    public void BrokenSummariesAreBadInputNamingFileAndKey(string json, string expected)
    {
        var p = WriteText(json);
        var e = Assert.Throws<ReportInputException>(() => RunSummary.Load(p));
        Assert.Equal(p, e.FilePath);
        Assert.StartsWith(p + ": ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AMissingSummarySaysWhatARunDirectoryHolds()
    {
        var p = PathOf(RunSummary.FileName);
        var e = Assert.Throws<ReportInputException>(() => RunSummary.Load(p));
        Assert.Contains(p, e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void SaveRefusesASummaryLoadWouldReject()
    {
        var e = Assert.Throws<InvalidOperationException>(() => (SyntheticRuns.Dit(4, 8) with { Net = "DiT" }).Save(PathOf("x.json")));
        Assert.Contains("net is 'DiT'", e.Message);
        Assert.Empty(_dir.GetFiles());
    }

    [Fact]
    public void PythonsJsonModuleReadsTheFile()
    {
        if (!PythonPeer.Available()) return;
        var p = PathOf(RunSummary.FileName);
        var summary = SyntheticRuns.DyDit(16, 8);
        summary.Save(p);
        var output = PythonPeer.Run(
            "import json, sys; d = json.load(open(sys.argv[1], encoding='utf-8')); print(d['net'], d['lambda'], d['step_activity']['heads'][1], d['metrics']['fid'], d['name'])",
            [p]);
        // Python's repr and .NET's "R" both print the shortest text that round-trips
        Assert.Equal($"dydit 0.7 {summary.StepActivity!.Heads![1].ToString("R", CultureInfo.InvariantCulture)} 2.0821 {summary.Name}", output.Trim());
    }
}
