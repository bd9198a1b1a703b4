using System.Xml.Linq;
using DyDiT.Eval.Evaluation.Reports;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Tests.Common.Reports;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>dydit-eval report</c> end to end: three synthetic run directories (summaries written by <see cref="RunSummary.Save"/>,
/// samples by NpzWriter), the files it writes, grid.png decoded by PIL against the source samples, and bad input.
/// </summary>
public sealed class ReportTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-report-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Out => Path.Combine(_dir.FullName, "report");

    // DiT and SparseDiT at 12 px with 6 and 2 samples, DyDiT at 6 px with 7 samples (shown scaled ×2).
    private string[] Runs()
    {
        var dit = SyntheticRuns.Create(_dir.FullName, "dit", 0, SyntheticRuns.Dit(6, 12), 6, 12);
        var dydit = SyntheticRuns.Create(_dir.FullName, "dydit", 1, SyntheticRuns.DyDit(7, 6), 7, 6);
        var sparse = SyntheticRuns.Create(_dir.FullName, "sparsedit", 2, SyntheticRuns.SparseDit(2, 12), 2, 12);
        return [dit, dydit, sparse];
    }

    [Fact]
    public void WritesEveryFileAndSaysWhereTheReportIs()
    {
        var runs = Runs();
        var r = CliProcess.Run(["report", "--runs", .. runs, "-o", Out, "--grid", "3"]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains($"report: {Path.Combine(Out, "report.html")}", r.Stdout);
        foreach (var f in new[] { "results.csv", "results.json", "report.md", "report.html", "fid_vs_gmacs.svg", "throughput.svg", "dydit_activity.svg", "grid.png" })
        {
            Assert.True(File.Exists(Path.Combine(Out, f)), $"{f} missing");
            Assert.Contains(Path.Combine(Out, f), r.Stdout);
        }
        var csv = File.ReadAllLines(Path.Combine(Out, "results.csv"));
        Assert.StartsWith("run,model,lambda,num_samples,gmacs_per_forward,gmacs_vs_dit,images_per_s,seconds_per_1000,fid,sfid,inception_score,precision,recall,", csv[0]);
        Assert.Equal(4, csv.Length);
        foreach (var svg in Directory.GetFiles(Out, "*.svg")) XDocument.Parse(File.ReadAllText(svg));
        var html = File.ReadAllText(Path.Combine(Out, "report.html"));
        Assert.Contains("<table", html);
        Assert.Contains("SparseDiT-XL/2", html);
    }

    [Fact]
    public void GridPngShowsTheSamplesOneRowPerRun()
    {
        if (!ImagePeer.PilAvailable()) return;
        var r = CliProcess.Run(["report", "--runs", .. Runs(), "-o", Out, "--grid", "3"]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        var (mode, width, height, rgb) = ImagePeer.DecodeWithPil(Path.Combine(Out, "grid.png"));
        Assert.Equal("RGB", mode);
        Assert.Equal((3 * 14 + 2, 3 * 14 + 2), (width, height));
        byte At(int x, int y, int c) => rgb[(y * width + x) * 3 + c];

        // cell (row, column) starts at (2 + 14·column, 2 + 14·row)
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 12; x++)
                for (int c = 0; c < 3; c++)
                {
                    Assert.Equal(SyntheticRuns.Pixel(0, 2, y, x, c), At(2 + 28 + x, 2 + y, c));            // DiT, sample 2
                    Assert.Equal(SyntheticRuns.Pixel(1, 1, y / 2, x / 2, c), At(2 + 14 + x, 2 + 14 + y, c)); // DyDiT 6 px ×2, sample 1
                    Assert.Equal(SyntheticRuns.Pixel(2, 0, y, x, c), At(2 + x, 2 + 28 + y, c));            // SparseDiT, sample 0
                    Assert.Equal(0, At(2 + 28 + x, 2 + 28 + y, c));                                        // SparseDiT has no sample 2
                }
        for (int x = 0; x < width; x++) Assert.Equal(0, At(x, 14, 1)); // padding between rows 0 and 1
        for (int y = 0; y < height; y++) Assert.Equal(0, At(0, y, 0));
    }

    [Fact]
    public void ARunWithoutItsSummaryIsBadInputNamingTheFile()
    {
        var runs = Runs();
        var summary = Path.Combine(runs[1], "run-summary.json");
        File.Delete(summary);
        var r = CliProcess.Run(["report", "--runs", .. runs, "-o", Out]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(summary, r.Stderr);
        Assert.False(Directory.Exists(Out));
    }

    [Fact]
    public void ARunWithoutItsSamplesIsBadInputNamingTheFile()
    {
        var runs = Runs();
        var samples = Path.Combine(runs[2], "samples.npz");
        File.Delete(samples);
        var r = CliProcess.Run(["report", "--runs", .. runs, "-o", Out]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(samples, r.Stderr);
    }

    [Fact]
    public void ADirectoryThatIsNotThereIsBadInput()
    {
        var missing = Path.Combine(_dir.FullName, "nope");
        var r = CliProcess.Run(["report", "--runs", missing, "-o", Out]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(missing, r.Stderr);
    }

    [Theory]
    [InlineData("--runs")]
    [InlineData("-o")]
    [InlineData("--grid-negative")]
    public void UsageErrorsExitWithTwo(string which)
    {
        string[] args = which switch
        {
            "--runs" => ["report", "--runs", "-o", Out],
            "-o" => ["report", "--runs", _dir.FullName],
            _ => ["report", "--runs", _dir.FullName, "-o", Out, "--grid", "-1"],
        };
        var r = CliProcess.Run(args);
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("dydit-eval", r.Stderr);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("")]
    [InlineData("-3")]
    [InlineData("257")]
    [InlineData("2147483647")]
    public void NonsenseGridValuesAreUsageErrorsNamingTheOption(string value)
    {
        var r = CliProcess.Run(["report", "--runs", .. Runs(), "-o", Out, "--grid", value]);
        Assert.True(r.ExitCode == 2, $"--grid '{value}': exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("--grid", r.Stderr);
        Assert.False(Directory.Exists(Out));
        Assert.Empty(Directory.GetDirectories(_dir.FullName, ".report.tmp-*"));
    }

    /// <summary>Every entry below <paramref name="dir"/>, hidden ones included, with its bytes.</summary>
    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(p => Path.GetRelativePath(dir, p), File.ReadAllBytes);

    [Fact]
    public void AFullDiskLeavesThePreviousReportWholeAndNoTemporaryFolder()
    {
        var runs = Runs();
        using var disk = FullDisk.TryMount(1024);
        if (disk is null) return;
        var report = Path.Combine(disk.Path, "report");

        var first = CliProcess.Run(["report", "--runs", .. runs, "-o", report, "--grid", "3"]);
        Assert.True(first.ExitCode == 0, $"exit {first.ExitCode}: {first.Stderr}");
        var before = Snapshot(disk.Path);
        Assert.Contains(Path.Combine("report", "report.html"), before.Keys);

        disk.Fill();
        var second = CliProcess.Run(["report", "--runs", runs[0], runs[2], "-o", report, "--grid", "2"]);
        Assert.True(second.ExitCode == 3, $"exit {second.ExitCode}: {second.Stderr}");
        Assert.Contains(report, second.Stderr);
        Assert.Contains("no space left on device", second.Stderr);
        var after = Snapshot(disk.Path);
        after.Remove("filler");
        Assert.Equal(before.Keys.Order(), after.Keys.Order()); // no temporary folder or file, nothing half replaced
        foreach (var (name, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[name]), $"{name} changed");
    }

    [Fact]
    public void AFullDiskWithNoEarlierReportLeavesNothing()
    {
        var runs = Runs();
        using var disk = FullDisk.TryMount(256);
        if (disk is null) return;
        disk.Fill();
        var report = Path.Combine(disk.Path, "report");
        var r = CliProcess.Run(["report", "--runs", .. runs, "-o", report]);
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains(report, r.Stderr);
        Assert.Equal(["filler"], Directory.EnumerateFileSystemEntries(disk.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void AReportIntoAMountPointIsReplacedFileByFileAndAFullDiskLeavesIt()
    {
        var runs = Runs();
        using var disk = FullDisk.TryMount(1024);
        if (disk is null) return;
        // The folder is a mount point: it cannot be renamed, so the files are renamed in one by one.
        Assert.Equal(0, CliProcess.Run(["report", "--runs", .. runs, "-o", disk.Path, "--grid", "3"]).ExitCode);
        var r = CliProcess.Run(["report", "--runs", runs[0], runs[2], "-o", disk.Path, "--grid", "0"]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        var before = Snapshot(disk.Path);
        Assert.Equal(new[] { "fid_vs_gmacs.svg", "report.html", "report.md", "results.csv", "results.json", "throughput.svg" }, before.Keys.Order());

        disk.Fill();
        var full = CliProcess.Run(["report", "--runs", .. runs, "-o", disk.Path, "--grid", "3"]);
        Assert.True(full.ExitCode == 3, $"exit {full.ExitCode}: {full.Stderr}");
        Assert.Contains(disk.Path, full.Stderr);
        var after = Snapshot(disk.Path);
        after.Remove("filler");
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[name]), $"{name} changed");
    }

    [Fact]
    public void AReportOverAnEarlierOneKeepsOtherFilesAndDropsStaleReportFiles()
    {
        var runs = Runs();
        Assert.Equal(0, CliProcess.Run(["report", "--runs", .. runs, "-o", Out, "--grid", "3"]).ExitCode);
        Assert.True(File.Exists(Path.Combine(Out, "dydit_activity.svg")));
        File.WriteAllText(Path.Combine(Out, "notes.txt"), "my notes");
        Directory.CreateDirectory(Path.Combine(Out, "extra"));

        // DiT and SparseDiT only (no per-step activity) and no grid: the earlier plot and grid must not stay behind.
        var r = CliProcess.Run(["report", "--runs", runs[0], runs[2], "-o", Out, "--grid", "0"]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(
            new[] { "extra", "fid_vs_gmacs.svg", "notes.txt", "report.html", "report.md", "results.csv", "results.json", "throughput.svg" },
            Directory.EnumerateFileSystemEntries(Out).Select(Path.GetFileName).Order());
        Assert.Equal("my notes", File.ReadAllText(Path.Combine(Out, "notes.txt")));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(Out, "results.csv")).Length);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.FullName, ".report*")); // no temporary or set-aside folder
    }

    [Fact]
    public void CsvTextCellsThatLookLikeFormulasAreNeutralisedNumbersStayNumbers()
    {
        var summary = SyntheticRuns.Dit(6, 12) with
        {
            Name = "=HYPERLINK(\"http://evil\",\"x\")",
            Checkpoint = "@SUM(1+1)",
            Reference = "+cmd|' /C calc'!A0",
            Labels = "-2+3",
            Seed = 42,
            Metrics = new RunMetrics { Fid = -1.25, Sfid = 4.6012, InceptionScore = 278.24, Precision = 0.8271, Recall = 0.5753 },
        };
        var run = SyntheticRuns.Create(_dir.FullName, "evil", 0, summary, 6, 12);
        var r = CliProcess.Run(["report", "--runs", run, "-o", Out]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        var lines = File.ReadAllLines(Path.Combine(Out, "results.csv"));
        var header = lines[0].Split(',');
        var cells = ParseCsvRow(lines[1]);
        string Cell(string column) => cells[Array.IndexOf(header, column)];
        Assert.Equal("'=HYPERLINK(\"http://evil\",\"x\")", Cell("run"));
        Assert.Equal("'@SUM(1+1)", Cell("checkpoint"));
        Assert.Equal("'+cmd|' /C calc'!A0", Cell("reference"));
        Assert.Equal("'-2+3", Cell("labels"));
        Assert.Equal("-1.25", Cell("fid")); // a number, negative or not, stays a number
        Assert.Equal("42", Cell("seed"));
        Assert.Equal("DiT-XL/2", Cell("model"));
        // results.json keeps the text as it is: JSON readers do not evaluate formulas.
        Assert.Contains("\"checkpoint\": \"@SUM(1+1)\"", File.ReadAllText(Path.Combine(Out, "results.json")));
    }

    /// <summary>One RFC 4180 row: quoted cells may hold commas and doubled quotes.</summary>
    private static string[] ParseCsvRow(string line)
    {
        var cells = new List<string>();
        var cell = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { cell.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else cell.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { cells.Add(cell.ToString()); cell.Clear(); }
            else cell.Append(c);
        }
        cells.Add(cell.ToString());
        return cells.ToArray();
    }

    [Fact]
    public void HelpExplainsTheVerb()
    {
        var r = CliProcess.Run(["report", "--help"]);
        Assert.Equal(0, r.ExitCode);
        foreach (var word in new[] { "--runs", "--output", "--grid", "run-summary.json", "samples.npz", "random", "nearest neighbour" })
            Assert.Contains(word, r.Stdout);
        Assert.Contains("report", CliProcess.Run(["--help"]).Stdout);
    }
}
