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
