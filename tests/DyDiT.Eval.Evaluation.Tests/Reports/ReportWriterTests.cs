using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using CsvHelper;
using DyDiT.Eval.Evaluation.Reports;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Tests.Common.Reports;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests.Reports;

/// <summary>
/// <see cref="ReportWriter"/> on three synthetic runs (DiT 16 px, DyDiT 8 px with step activity, SparseDiT 16 px with
/// its metrics in metrics.json and fewer samples than the grid asks for). Expected numbers are computed here from the
/// summaries' inputs; files are parsed by independent readers (Python's csv, System.Xml, PIL).
/// </summary>
public sealed partial class ReportWriterTests : IDisposable
{
    private const int K = 4;
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-report-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Out => Path.Combine(_dir.FullName, "out");

    private (string[] Dirs, RunSummary[] Summaries, int[] Counts, int[] Sizes) ThreeRuns(bool randomDyDit = false)
    {
        RunSummary[] s = [SyntheticRuns.Dit(5, 16), SyntheticRuns.DyDit(12, 8, randomWeights: randomDyDit), SyntheticRuns.SparseDit(3, 16)];
        int[] counts = [5, 12, 3], sizes = [16, 8, 16];
        var dirs = s.Select((summary, i) => SyntheticRuns.Create(_dir.FullName, $"run{i}", i, summary, counts[i], sizes[i])).ToArray();
        File.WriteAllText(Path.Combine(dirs[2], ReportWriter.MetricsFile), SyntheticRuns.SparseDitMetricsJson);
        return (dirs, s, counts, sizes);
    }

    private static string[] ExpectedHeader =>
    [
        "run", "model", "lambda", "num_samples", "gmacs_per_forward", "gmacs_vs_dit", "images_per_s", "seconds_per_1000",
        "fid", "sfid", "inception_score", "precision", "recall", "checkpoint", "reference", "cfg_scale", "steps", "sampler", "seed", "labels",
    ];

    /// <summary>Expected row values (as doubles or text; null = empty), from the summary inputs alone.</summary>
    private static Dictionary<string, object?> Expected(RunSummary s, RunSummary dit, string run, RunMetrics? metrics) => new()
    {
        ["run"] = run,
        ["model"] = s.Model,
        ["lambda"] = s.Lambda,
        ["num_samples"] = (double)s.NumSamples,
        ["gmacs_per_forward"] = s.MacsPerForward / 1e9,
        ["gmacs_vs_dit"] = s.MacsPerForward / dit.MacsPerForward,
        ["images_per_s"] = s.NumSamples / s.GenerationSeconds,
        ["seconds_per_1000"] = 1000 * s.GenerationSeconds / s.NumSamples,
        ["fid"] = metrics?.Fid,
        ["sfid"] = metrics?.Sfid,
        ["inception_score"] = metrics?.InceptionScore,
        ["precision"] = metrics?.Precision,
        ["recall"] = metrics?.Recall,
        ["checkpoint"] = s.Checkpoint,
        ["reference"] = s.Reference,
        ["cfg_scale"] = s.CfgScale,
        ["steps"] = (double)s.Steps,
        ["sampler"] = s.Sampler,
        ["seed"] = (double)s.Seed,
        ["labels"] = s.Labels,
    };

    private static readonly RunMetrics SparseMetrics = new() { InceptionScore = 251.5, Fid = 2.6125, Sfid = 5.25, Precision = 0.8, Recall = 0.6 };

    private static List<Dictionary<string, object?>> ExpectedRows(RunSummary[] s) =>
    [
        Expected(s[0], s[0], s[0].Name!, s[0].Metrics),
        Expected(s[1], s[0], s[1].Name!, s[1].Metrics),
        Expected(s[2], s[0], s[2].Model, SparseMetrics),
    ];

    private static void AssertCell(object? expected, string actual, string column)
    {
        switch (expected)
        {
            case null: Assert.True(actual == "", $"{column}: expected an empty cell, got '{actual}'"); break;
            case double d: Assert.True(d == double.Parse(actual, CultureInfo.InvariantCulture), $"{column}: expected {d:R}, got '{actual}'"); break;
            default: Assert.Equal((string)expected, actual); break;
        }
    }

    [Fact]
    public void CsvParsedByPythonHasTheHeaderAndTheSummariesNumbers()
    {
        if (!PythonPeer.Available()) return;
        var (dirs, s, _, _) = ThreeRuns();
        ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        var json = PythonPeer.Run(
            "import csv, json, sys\nwith open(sys.argv[1], newline='', encoding='utf-8') as f: rows = list(csv.reader(f))\nprint(json.dumps(rows))",
            [Path.Combine(Out, ReportWriter.CsvFile)]);
        var rows = JsonSerializer.Deserialize<string[][]>(json)!;
        Assert.Equal(4, rows.Length);
        Assert.Equal(ExpectedHeader, rows[0].Take(ExpectedHeader.Length));
        var expected = ExpectedRows(s);
        for (int r = 0; r < 3; r++)
        {
            Assert.Equal(rows[0].Length, rows[r + 1].Length);
            foreach (var (column, value) in expected[r])
                AssertCell(value, rows[r + 1][Array.IndexOf(rows[0], column)], $"row {r} {column}");
        }
    }

    [Fact]
    public void CsvReadsBackWithCsvHelper()
    {
        var (dirs, s, _, _) = ThreeRuns();
        ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        using var fs = File.OpenRead(Path.Combine(Out, ReportWriter.CsvFile));
        using var csv = CsvReader.Create(fs, null, leaveOpen: false);
        Assert.Equal(ExpectedHeader, csv.Headers.Take(ExpectedHeader.Length));
        var expected = ExpectedRows(s);
        int r = 0;
        while (csv.Read())
        {
            foreach (var (column, value) in expected[r]) AssertCell(value, csv.GetString(column), $"row {r} {column}");
            r++;
        }
        Assert.Equal(3, r);
    }

    [Fact]
    public void JsonHasTheSameFieldsPerRun()
    {
        var (dirs, s, _, _) = ThreeRuns();
        ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Out, ReportWriter.JsonFile)));
        Assert.False(doc.RootElement.GetProperty("random_weights").GetBoolean());
        var runs = doc.RootElement.GetProperty("runs").EnumerateArray().ToArray();
        Assert.Equal(3, runs.Length);
        var header = File.ReadLines(Path.Combine(Out, ReportWriter.CsvFile)).First().Split(',');
        var expected = ExpectedRows(s);
        for (int r = 0; r < 3; r++)
        {
            Assert.Equal(header, runs[r].EnumerateObject().Select(p => p.Name));
            foreach (var (column, value) in expected[r])
            {
                var v = runs[r].GetProperty(column);
                switch (value)
                {
                    case null: Assert.Equal(JsonValueKind.Null, v.ValueKind); break;
                    case double d: Assert.Equal(d, v.GetDouble()); break;
                    default: Assert.Equal((string)value, v.GetString()); break;
                }
            }
        }
    }

    [Fact]
    public void HtmlIsSelfContainedWithTheTableThePlotsAndAdmsLines()
    {
        var (dirs, s, _, _) = ThreeRuns();
        var result = ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        var html = File.ReadAllText(result.Html);
        Assert.Contains("<table class=\"comparison\">", html);
        foreach (var model in s.Select(x => x.Model).Distinct()) Assert.Contains(model, html);
        Assert.Contains("DyDiT λ=0.7 &lt;fast&gt; &amp; &quot;lean&quot;", html); // escaped, never raw
        Assert.DoesNotContain("<fast>", html);
        foreach (var file in new[] { "fid_vs_gmacs.svg", "throughput.svg", "dydit_activity.svg" })
        {
            Assert.Contains($"<figure class=\"plot\" data-file=\"{file}\">\n<svg ", html);
            var standalone = File.ReadAllText(Path.Combine(Out, file));
            Assert.Contains(standalone[standalone.IndexOf("<svg", StringComparison.Ordinal)..], html); // the same chart inline
        }
        Assert.Equal(3, Regex.Matches(html, "<svg ").Count);
        foreach (var text in s.Select(x => x.EvaluationText).OfType<string>()) Assert.Contains($"<pre><code>{text}</code></pre>", html);
        Assert.Contains("ADM&#39;s lines were not recorded", html); // the SparseDiT run: metrics.json only
        // self-contained: no external anything
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", html);
        var png = Convert.FromBase64String(Regex.Match(html, "src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").Groups[1].Value);
        Assert.Equal(File.ReadAllBytes(Path.Combine(Out, ReportWriter.GridFile)), png);
        Assert.DoesNotContain("random weights", html, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void MarkdownHasTheTableTheSettingsAndAdmsLinesVerbatim()
    {
        var (dirs, s, _, _) = ThreeRuns();
        var md = File.ReadAllText(ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K }).Markdown);
        var lines = md.Split('\n');
        Assert.StartsWith("# DyDiT.Eval report: ", lines[0]);
        int header = Array.FindIndex(lines, l => l.StartsWith("| Run | Model | Net | Checkpoint | λ | Samples | GMACs/forward | vs DiT | images/s |", StringComparison.Ordinal));
        Assert.True(header > 0, md);
        Assert.Matches(@"^\|( --- \|)+$", lines[header + 1]);
        Assert.StartsWith("| DiT-XL/2 cfg1.5 | DiT-XL/2 | dit | `DiT-XL-2-256x256.pt` | — | 5 | 118.64 | 1.000× |", lines[header + 2]);
        Assert.StartsWith("| DyDiT λ=0.7 \\<fast\\> \\& \"lean\" | DiT-XL/2 | dydit | `new_dydit0.7.pt` | 0.7 | 12 | 84.33 | 0.711× |", lines[header + 3]);
        Assert.StartsWith("| SparseDiT-XL/2 | SparseDiT-XL/2 | sparsedit |", lines[header + 4]);
        Assert.Equal(header + 5, Array.FindIndex(lines, header + 1, l => !l.StartsWith('|')));
        Assert.Contains("| Run | cfg scale | steps | sampler | seed | labels |", md);
        foreach (var text in s.Select(x => x.EvaluationText).OfType<string>()) Assert.Contains("```\n" + text + "```\n", md);
        Assert.Contains("![FID against GMACs per forward](fid_vs_gmacs.svg)", md);
        Assert.Contains("![samples](grid.png)", md);
        Assert.DoesNotContain("random weights", md, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void AnyRandomWeightsRunPutsTheWarningInTheTitle()
    {
        var (dirs, _, _, _) = ThreeRuns(randomDyDit: true);
        var result = ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        var md = File.ReadAllText(result.Markdown);
        var html = File.ReadAllText(result.Html);
        const string warning = "RANDOM WEIGHTS: these numbers measure nothing but the pipeline";
        Assert.StartsWith("# ", md);
        Assert.Contains(warning, md.Split('\n')[0]);
        Assert.Contains(warning, Regex.Match(html, "<title>(.*)</title>").Groups[1].Value);
        Assert.Contains(warning, Regex.Match(html, "<h1>(.*)</h1>").Groups[1].Value);
        Assert.True(JsonDocument.Parse(File.ReadAllText(Path.Combine(Out, ReportWriter.JsonFile))).RootElement.GetProperty("random_weights").GetBoolean());
    }

    [Fact]
    public void SvgFilesAreXmlWithOnePointPerModelAndItsLabel()
    {
        var (dirs, s, _, _) = ThreeRuns();
        ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        string[] names = [s[0].Name!, s[1].Name!, s[2].Model];

        var fid = XDocument.Parse(File.ReadAllText(Path.Combine(Out, "fid_vs_gmacs.svg")));
        Assert.Equal(Svg + "svg", fid.Root!.Name);
        var points = fid.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "point").ToArray();
        Assert.Equal(names, points.Select(p => (string?)p.Attribute("data-label")));
        Assert.All(points, p => Assert.Equal((string?)p.Attribute("data-label"), p.Element(Svg + "text")!.Value));
        Assert.All(points, p => Assert.NotNull(p.Element(Svg + "circle")));
        // lower FID is higher on the page is wrong: y grows downwards, so the smaller FID has the larger cy
        double Cy(int i) => double.Parse(points[i].Element(Svg + "circle")!.Attribute("cy")!.Value, CultureInfo.InvariantCulture);
        double Cx(int i) => double.Parse(points[i].Element(Svg + "circle")!.Attribute("cx")!.Value, CultureInfo.InvariantCulture);
        Assert.True(Cy(1) > Cy(0) && Cy(0) > Cy(2), "points are placed by FID");
        Assert.True(Cx(2) < Cx(1) && Cx(1) < Cx(0), "points are placed by GMACs");
        var ticks = fid.Descendants(Svg + "text").Where(t => (string?)t.Attribute("class") == "tick").Select(t => t.Value).ToArray();
        Assert.True(ticks.Length >= 6, string.Join(" ", ticks));

        var throughput = XDocument.Parse(File.ReadAllText(Path.Combine(Out, "throughput.svg")));
        var bars = throughput.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "bar").ToArray();
        Assert.Equal(names, bars.Select(b => (string?)b.Attribute("data-label")));
        double Height(int i) => double.Parse(bars[i].Element(Svg + "rect")!.Attribute("height")!.Value, CultureInfo.InvariantCulture);
        double[] rates = s.Select(x => x.NumSamples / x.GenerationSeconds).ToArray();
        for (int i = 1; i < 3; i++) Assert.Equal(rates[i] / rates[0], Height(i) / Height(0), 2);

        var activity = XDocument.Parse(File.ReadAllText(Path.Combine(Out, "dydit_activity.svg")));
        var series = activity.Descendants(Svg + "polyline").Where(p => (string?)p.Attribute("class") == "series").ToArray();
        Assert.Equal([$"{s[1].Name} · heads", $"{s[1].Name} · MLP groups", $"{s[1].Name} · tokens"], series.Select(p => (string?)p.Attribute("data-series")));
        Assert.All(series, p => Assert.Equal(10, p.Attribute("points")!.Value.Split(' ').Length));
        var legend = activity.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "legend-entry").Select(g => g.Element(Svg + "text")!.Value);
        Assert.Equal(series.Select(p => (string?)p.Attribute("data-series")), legend);
    }

    [Fact]
    public void WithoutFidOrActivityThePlotsSaySo()
    {
        var s = SyntheticRuns.Dit(4, 8) with { Metrics = null, EvaluationText = null };
        var dir = SyntheticRuns.Create(_dir.FullName, "plain", 0, s, 4, 8);
        Directory.CreateDirectory(Out);
        File.WriteAllText(Path.Combine(Out, "dydit_activity.svg"), "stale");
        var result = ReportWriter.Write([dir], Out);
        var fid = XDocument.Parse(File.ReadAllText(Path.Combine(Out, "fid_vs_gmacs.svg")));
        Assert.Empty(fid.Descendants(Svg + "circle"));
        Assert.Contains("No run has an FID", fid.Root!.Value);
        Assert.False(File.Exists(Path.Combine(Out, "dydit_activity.svg")));
        Assert.DoesNotContain(result.Files, f => f.EndsWith("dydit_activity.svg"));
        Assert.Contains("there is no dydit\\_activity.svg", File.ReadAllText(result.Markdown));
        Assert.Contains("Not evaluated", File.ReadAllText(result.Html));
    }

    [Fact]
    public void GridHasTheFirstKSamplesOfEachRunPixelForPixel()
    {
        if (!ImagePeer.PilAvailable()) return;
        var (dirs, _, counts, sizes) = ThreeRuns();
        ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        var (mode, width, height, rgb) = ImagePeer.DecodeWithPil(Path.Combine(Out, ReportWriter.GridFile));
        const int cell = 16, pad = 2;
        Assert.Equal("RGB", mode);
        Assert.Equal((K * (cell + pad) + pad, 3 * (cell + pad) + pad), (width, height));
        var expected = new byte[width * height * 3]; // black padding and empty cells
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < Math.Min(K, counts[r]); k++)
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++)
                        for (int c = 0; c < 3; c++)
                        {
                            // the 8-px run is shown at 16 px: each source pixel as a 2×2 block
                            int sy = y * sizes[r] / cell, sx = x * sizes[r] / cell;
                            int gy = pad + r * (cell + pad) + y, gx = pad + k * (cell + pad) + x;
                            expected[(gy * width + gx) * 3 + c] = SyntheticRuns.Pixel(r, k, sy, sx, c);
                        }
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != rgb[i])
                Assert.Fail($"grid pixel ({i / 3 % width}, {i / 3 / width}) channel {i % 3}: expected {expected[i]}, PIL decoded {rgb[i]}");
        if (ImagePeer.PngCheckAvailable()) ImagePeer.RunPngCheck(Path.Combine(Out, ReportWriter.GridFile));
    }

    [Fact]
    public void SameRunsGiveTheSameBytes()
    {
        var (dirs, _, _, _) = ThreeRuns();
        var first = ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = K });
        var bytes = first.Files.ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        var second = ReportWriter.Write(dirs, Path.Combine(_dir.FullName, "again"), new ReportOptions { GridSamples = K });
        Assert.Equal(bytes.Keys.Order(), second.Files.Select(f => Path.GetFileName(f)).Order());
        foreach (var f in second.Files) Assert.True(bytes[Path.GetFileName(f)].SequenceEqual(File.ReadAllBytes(f)), $"{Path.GetFileName(f)} differs");
        Assert.Equal(
            ["dydit_activity.svg", "fid_vs_gmacs.svg", "grid.png", "report.html", "report.md", "results.csv", "results.json", "throughput.svg"],
            Directory.GetFiles(Out).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void GridZeroWritesNoImage()
    {
        var (dirs, _, _, _) = ThreeRuns();
        var result = ReportWriter.Write(dirs, Out, new ReportOptions { GridSamples = 0 });
        Assert.False(File.Exists(Path.Combine(Out, ReportWriter.GridFile)));
        Assert.DoesNotContain("data:image/png", File.ReadAllText(result.Html));
    }

    [Fact]
    public void AMissingSummaryOrSampleBatchIsNamedAndNothingIsWritten()
    {
        var (dirs, _, _, _) = ThreeRuns();
        var samples = Path.Combine(dirs[1], "samples.npz");
        File.Delete(samples);
        var e = Assert.Throws<ReportInputException>(() => ReportWriter.Write(dirs, Out));
        Assert.Equal(samples, e.FilePath);
        Assert.Contains("samples_file", e.Message);

        var summary = Path.Combine(dirs[0], RunSummary.FileName);
        File.Delete(summary);
        e = Assert.Throws<ReportInputException>(() => ReportWriter.Write(dirs, Out));
        Assert.Equal(summary, e.FilePath);
        Assert.False(Directory.Exists(Out));
    }

    [Theory]
    [InlineData("=1+2", "'=1+2")]
    [InlineData("+1", "'+1")]
    [InlineData("-x", "'-x")]
    [InlineData("@SUM(A1)", "'@SUM(A1)")]
    [InlineData("\tx", "'\tx")]
    [InlineData("\rx", "'\rx")]
    [InlineData("DiT-XL/2", "DiT-XL/2")]
    [InlineData("/models/a=b.pt", "/models/a=b.pt")]
    [InlineData("", "")]
    public void FormulaLikeTextGetsALeadingQuote(string text, string written) =>
        Assert.Equal(written, ResultTable.NeutraliseFormula(text));

    [Fact]
    public void AnOutputThatCannotBeWrittenIsAReportOutputExceptionNamingItAndLeavesNothing()
    {
        var (dirs, _, _, _) = ThreeRuns();
        // The output's parent is a file: no folder can be made there (a full disk is tested through the CLI).
        var notAFolder = Path.Combine(_dir.FullName, "plain-file");
        File.WriteAllText(notAFolder, "x");
        var output = Path.Combine(notAFolder, "report");
        var e = Assert.Throws<ReportOutputException>(() => ReportWriter.Write(dirs, output));
        Assert.Equal(output, e.FolderPath);
        Assert.StartsWith(output + ": cannot write the report", e.Message);
        Assert.Equal("x", File.ReadAllText(notAFolder));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.FullName, ".*"));
    }

    [Fact]
    public void MismatchedCountsAreWarnedAbout()
    {
        var s = SyntheticRuns.Dit(9, 16);
        var dir = SyntheticRuns.Create(_dir.FullName, "short", 0, s, 4, 8);
        var result = ReportWriter.Write([dir], Out, new ReportOptions { GridSamples = 2 });
        Assert.Contains(result.Warnings, w => w.Contains("holds 4 images") && w.Contains("num_samples = 9"));
        Assert.Contains(result.Warnings, w => w.Contains("image_size = 16"));
        Assert.Contains("Warning: ", File.ReadAllText(result.Markdown));
    }
}
