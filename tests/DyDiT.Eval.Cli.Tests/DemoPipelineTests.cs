using System.Globalization;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// Issue 8's end-to-end check, the main job at a smaller size: <c>demo init</c> → <c>run</c> of the three demo models
/// (one pool of two workers, the default SQLite ledger) → <c>report</c>. The report files are read by independent
/// parsers (Python's csv module, PIL for the PNG) and their numbers compared with what the runs wrote themselves
/// (metrics.json from the evaluation, samples.npz from the merge).
/// </summary>
public sealed class DemoPipelineTests : IDisposable
{
    private const int Samples = 24;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-demo-pipeline-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void DemoRunsEvaluateAndReport()
    {
        string demo = Path.Combine(_dir.FullName, "demo");
        var init = CliProcess.Run("demo", "init", demo, "--num-samples", $"{Samples}", "--steps", "4", "--reference-samples", "16");
        Assert.True(init.ExitCode == 0, init.Stderr);
        string[] names = ["dit-demo", "dydit-demo-0.7", "dydit-demo-0.5"];
        var run = CliProcess.RunLong(TimeSpan.FromMinutes(15), ["run", .. names.SelectMany(n => new[] { "--config", Path.Combine(demo, "runs", n + ".json") }), "--workers", "2", "--threads", "1"]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("samples/s", run.Stderr);
        Assert.Contains("ETA", run.Stderr);
        Assert.Equal(3, run.Stdout.Split('\n').Count(l => l.StartsWith("FID: ", StringComparison.Ordinal))); // ADM's lines per run

        string[] dirs = names.Select(n => Path.Combine(demo, "out", n)).ToArray();
        foreach (var d in dirs) // numpy loads the merged batch: ADM's layout, exactly N samples
        {
            var shape = PythonPeer.Run("import numpy as np, sys\nf = np.load(sys.argv[1])\n" +
                "print(sorted(f.files), f['arr_0'].shape, f['arr_0'].dtype, f['labels'].shape, f['labels'].dtype)\n",
                [Path.Combine(d, "samples.npz")]).Trim();
            Assert.Equal($"['arr_0', 'labels'] ({Samples}, 64, 64, 3) uint8 ({Samples},) int64", shape);
        }
        string report = Path.Combine(_dir.FullName, "report");
        var r = CliProcess.Run(["report", "--runs", .. dirs, "-o", report, "--grid", "5"]);
        Assert.True(r.ExitCode == 0, r.Stderr);

        // CSV: header and one row per run, parsed by Python's csv module; numbers equal the runs' own metrics.json.
        var csv = PythonPeer.Run("""
            import csv, json, sys
            rows = list(csv.DictReader(open(sys.argv[1], newline='')))
            print(json.dumps(rows))
            """, [Path.Combine(report, "results.csv")]);
        var rows = JsonSerializer.Deserialize<List<Dictionary<string, string>>>(csv)!;
        Assert.Equal(3, rows.Count);
        foreach (var column in new[] { "run", "model", "lambda", "num_samples", "gmacs_per_forward", "gmacs_vs_dit", "images_per_s", "seconds_per_1000",
                     "fid", "sfid", "inception_score", "precision", "recall" })
            Assert.True(rows[0].ContainsKey(column), $"results.csv has no column '{column}'");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(names[i], rows[i]["run"]);
            Assert.Equal($"{Samples}", rows[i]["num_samples"]);
            using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dirs[i], "metrics.json")));
            foreach (var key in new[] { "fid", "sfid", "inception_score", "precision", "recall" })
                Assert.Equal(metrics.RootElement.GetProperty(key).GetDouble(), double.Parse(rows[i][key], CultureInfo.InvariantCulture), 12);
        }
        Assert.Equal("", rows[0]["lambda"]);
        Assert.Equal(0.7, double.Parse(rows[1]["lambda"], CultureInfo.InvariantCulture));
        Assert.Equal(1.0, double.Parse(rows[0]["gmacs_vs_dit"], CultureInfo.InvariantCulture));
        // DyDiT really skips work: fewer MACs than DiT, and λ 0.5 fewer than λ 0.7.
        double g07 = double.Parse(rows[1]["gmacs_vs_dit"], CultureInfo.InvariantCulture), g05 = double.Parse(rows[2]["gmacs_vs_dit"], CultureInfo.InvariantCulture);
        Assert.InRange(g07, 0.3, 0.99);
        Assert.InRange(g05, 0.2, g07);

        // HTML: self-contained, with the table, the random-weights title and the three plots inline.
        string html = File.ReadAllText(Path.Combine(report, "report.html"));
        Assert.Contains("<table", html);
        Assert.Contains("RANDOM WEIGHTS", html, StringComparison.OrdinalIgnoreCase);
        Assert.True(html.Split("<svg").Length - 1 >= 3, "report.html should inline the three SVG plots");
        foreach (var n in names) Assert.Contains(n, html);
        foreach (var svg in new[] { "fid_vs_gmacs.svg", "throughput.svg", "dydit_activity.svg" })
            System.Xml.Linq.XDocument.Load(Path.Combine(report, svg));

        // PNG: decoded by PIL; 3 rows of 5 samples of 64 px with 2-px padding; the first cell equals sample 0 of DiT.
        if (!ImagePeer.PilAvailable()) return;
        var (mode, width, height, rgb) = ImagePeer.DecodeWithPil(Path.Combine(report, "grid.png"));
        Assert.Equal("RGB", mode);
        Assert.Equal(5 * 64 + 6 * 2, width);
        Assert.Equal(3 * 64 + 4 * 2, height);
        using var dit = NpzArchive.Open(Path.Combine(dirs[0], "samples.npz"));
        var first = dit["arr_0"].ReadAllBytes().AsSpan(0, 64 * 64 * 3);
        for (int y = 0; y < 64; y++)
            Assert.True(first.Slice(y * 64 * 3, 64 * 3).SequenceEqual(rgb.AsSpan(((2 + y) * width + 2) * 3, 64 * 3)), $"grid row {y} of sample 0");
    }
}
