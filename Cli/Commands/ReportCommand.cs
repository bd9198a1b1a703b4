using System.CommandLine;
using DyDiT.Eval.Evaluation.Reports;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval report --runs DIR… -o OUT/ [--grid K]</c>: compares finished runs (each a directory with
/// <c>run-summary.json</c> and <c>samples.npz</c>, as <c>dydit-eval run</c> leaves it) in results.csv, results.json,
/// report.md, a self-contained report.html, SVG plots and a PNG grid of samples.
/// </summary>
internal static class ReportCommand
{
    /// <summary>The most samples per run --grid takes: a row of 256 cells at 512 px is already 131,000 px wide.</summary>
    internal const int MaxGrid = 256;

    public static Command Create()
    {
        var runs = new Option<string[]>("--runs")
        {
            Description = "Finished run directories, in the order the report lists them (table rows, grid rows); each holds run-summary.json " +
                          "and samples.npz, and optionally metrics.json (used when the summary has no metrics). The first run with net " +
                          "'dit' is the baseline of the 'vs DiT' cost column.",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Folder for the report (created; files of the same names are replaced): results.csv, results.json, report.md, " +
                          "report.html, fid_vs_gmacs.svg, throughput.svg, dydit_activity.svg (runs with per-step activity), grid.png",
            Required = true,
        };
        var grid = new Option<int>("--grid")
        {
            Description = "Samples per run in grid.png: the first K of each samples.npz, one row per run, so a column is one sample index " +
                          "across models; smaller images are scaled to the largest by nearest neighbour. 0: no grid; at most 256",
            DefaultValueFactory = _ => 8,
        };
        var command = new Command("report",
            "Compare finished runs: FID, sFID, IS, precision, recall, GMACs per forward (and relative to the DiT run), images/s and seconds " +
            "per 1,000 images, with the run settings and ADM's evaluator lines verbatim. Writes CSV and JSON for tools, Markdown and a " +
            "self-contained HTML page (inline SVG plots, embedded PNG grid) for people. If any run used random (demo) weights, the title says " +
            "that its numbers measure nothing but the pipeline.")
        {
            runs, output, grid,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var dirs = parse.GetValue(runs) ?? [];
            if (dirs.Length == 0) throw new UsageException("--runs needs at least one run directory");
            int k = parse.GetValue(grid);
            if (k < 0 || k > MaxGrid)
                throw new UsageException($"--grid is {k}; give the number of samples per run shown in grid.png, 0 (no grid) to {MaxGrid}");
            string outDir = parse.GetValue(output)!;
            PathArguments.OutputFolder(outDir, "-o");
            ReportOutput result;
            try
            {
                result = ReportWriter.Write(dirs, outDir, new ReportOptions { GridSamples = k });
            }
            catch (ReportInputException e)
            {
                Console.Error.WriteLine($"dydit-eval: {e.Message}");
                return ExitCodes.BadInput;
            }
            catch (ReportOutputException e)
            {
                Console.Error.WriteLine($"dydit-eval: {e.Message}");
                return ExitCodes.Environment;
            }
            foreach (var w in result.Warnings) Console.Error.WriteLine("warning: " + w);
            foreach (var f in result.Files) Console.WriteLine("wrote " + f);
            Console.WriteLine($"report: {result.Html}");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
