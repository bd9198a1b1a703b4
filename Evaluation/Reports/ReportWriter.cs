using System.Text.Json;
using DyDiT.Eval.Engine.Formats.Png;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>What <see cref="ReportWriter.Write"/> may be told.</summary>
public sealed record ReportOptions
{
    /// <summary>Samples per run in <c>grid.png</c> (the first K of each <c>samples.npz</c>); 0 writes no grid.</summary>
    public int GridSamples { get; init; } = 8;
}

/// <summary>The files a report consists of and what it found odd (also shown in the report).</summary>
public sealed record ReportOutput(string Directory, IReadOnlyList<string> Files, IReadOnlyList<string> Warnings)
{
    public string Html => Path.Combine(Directory, ReportWriter.HtmlFile);

    public string Markdown => Path.Combine(Directory, ReportWriter.MarkdownFile);
}

/// <summary>
/// Compares finished runs: reads each run directory's <c>run-summary.json</c>, <c>samples.npz</c> (the first images
/// only) and, when the summary has no metrics, its <c>metrics.json</c> (as <c>dydit-eval evaluate --json</c> writes
/// it), and writes <c>results.csv</c>, <c>results.json</c>, <c>report.md</c>, <c>report.html</c>, the plots
/// (<c>fid_vs_gmacs.svg</c>, <c>throughput.svg</c>, <c>dydit_activity.svg</c> when a run recorded per-step activity)
/// and <c>grid.png</c>. Every input is checked before anything is written, so a bad run directory leaves no partial
/// report; the files are written into a temporary folder next to the output folder, which is renamed into place when
/// complete, so a failure (a full disk) leaves the previous report or nothing, and no temporary folder.
/// </summary>
public static class ReportWriter
{
    public const string CsvFile = "results.csv", JsonFile = "results.json", MarkdownFile = "report.md", HtmlFile = "report.html", GridFile = "grid.png";

    /// <summary>The metrics file <c>dydit-eval evaluate --json</c> writes, read from a run directory when its summary has no metrics.</summary>
    public const string MetricsFile = "metrics.json";

    /// <summary>
    /// Writes the report on <paramref name="runDirectories"/> (in that order: table rows, grid rows) into
    /// <paramref name="outputDirectory"/>, creating it. Throws <see cref="ReportInputException"/> naming the file when a
    /// run directory lacks its summary or samples or the summary is invalid, and
    /// <see cref="Engine.Formats.TensorFileException"/> when a <c>samples.npz</c> is damaged or not an ADM batch, and
    /// <see cref="ReportOutputException"/> naming the output folder when the report cannot be written.
    /// </summary>
    public static ReportOutput Write(IReadOnlyList<string> runDirectories, string outputDirectory, ReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(runDirectories);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        options ??= new ReportOptions();
        if (runDirectories.Count == 0) throw new ArgumentException("a report needs at least one run directory", nameof(runDirectories));
        if (options.GridSamples < 0) throw new ArgumentException($"GridSamples is {options.GridSamples}; use 0 for no grid", nameof(options));

        // Read and check everything first.
        var summaries = new List<RunSummary>();
        var metrics = new List<RunMetrics?>();
        var samplesPaths = new List<string>();
        foreach (var dir in runDirectories)
        {
            if (!Directory.Exists(dir))
                throw new ReportInputException(dir, "run directory not found (pass the folders dydit-eval run created, each with run-summary.json and samples.npz)");
            var summary = RunSummary.Load(Path.Combine(dir, RunSummary.FileName));
            var samples = Path.Combine(dir, summary.SamplesFile);
            if (!File.Exists(samples))
                throw new ReportInputException(samples, $"not found — {RunSummary.FileName} names samples_file '{summary.SamplesFile}', the merged sample batch of a finished run");
            summaries.Add(summary);
            samplesPaths.Add(samples);
            metrics.Add(summary.Metrics == null ? ReadMetrics(Path.Combine(dir, MetricsFile)) : null);
        }
        var rows = RunResult.Compare(summaries, metrics);
        var warnings = new List<string>();
        var samplesByRun = new List<SampleGrid.Samples>();
        for (int i = 0; i < rows.Count; i++)
        {
            var s = SampleGrid.Read(samplesPaths[i], options.GridSamples);
            samplesByRun.Add(s);
            if (s.Total != rows[i].Summary.NumSamples)
                warnings.Add($"{rows[i].Run}: {samplesPaths[i]} holds {s.Total} images, but its summary says num_samples = {rows[i].Summary.NumSamples}");
            if (rows[i].Summary.ImageSize > 0 && (s.Height != rows[i].Summary.ImageSize || s.Width != rows[i].Summary.ImageSize))
                warnings.Add($"{rows[i].Run}: images are {s.Width}×{s.Height}, but its summary says image_size = {rows[i].Summary.ImageSize}");
        }
        if (rows.Any(r => r.Summary.Net != "dit") && !rows.Any(r => r.Summary.Net == "dit"))
            warnings.Add("no DiT run among the reported runs: gmacs_vs_dit is empty");

        // Then write: into a fresh folder next to the output, renamed into place when complete, so a failure leaves the
        // previous report (or nothing) and never half a report.
        var outDir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDirectory));
        if (File.Exists(outDir)) throw new ReportInputException(outDir, "is a file; the report is written into a folder (give a folder path)");
        var parent = Path.GetDirectoryName(outDir) ?? throw new ReportInputException(outDir, "cannot hold a report (give a folder below it)");
        var stage = Path.Combine(parent, $".{Path.GetFileName(outDir)}.tmp-{Guid.NewGuid():N}");
        try
        {
            bool inside = false;
            try
            {
                Directory.CreateDirectory(parent);
                Directory.CreateDirectory(stage);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException && Directory.Exists(outDir))
            {
                // The folder exists but its parent takes no new entry (read-only, not ours): stage inside it instead.
                stage = Path.Combine(outDir, $".report.tmp-{Guid.NewGuid():N}");
                Directory.CreateDirectory(stage);
                inside = true;
            }
            var names = WriteFiles(stage, rows, samplesByRun, options, warnings);
            if (inside) ReplaceFileByFile(stage, outDir);
            else Publish(stage, outDir, warnings);
            return new ReportOutput(outDir, names.Select(n => Path.Combine(outDir, n)).ToArray(), warnings);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not (FileNotFoundException or EndOfStreamException))
        {
            throw new ReportOutputException(outDir, e);
        }
        finally
        {
            try { if (Directory.Exists(stage)) Directory.Delete(stage, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// Renames each finished file of <paramref name="stage"/> over its namesake in <paramref name="outDir"/> (each
    /// rename atomic) and removes earlier report files this report does not have; for a folder that cannot be swapped.
    /// </summary>
    private static void ReplaceFileByFile(string stage, string outDir)
    {
        var produced = Directory.GetFiles(stage).Select(Path.GetFileName).ToHashSet();
        foreach (var file in Directory.GetFiles(stage)) File.Move(file, Path.Combine(outDir, Path.GetFileName(file)), overwrite: true);
        foreach (var name in ReportFileNames.Where(n => !produced.Contains(n))) File.Delete(Path.Combine(outDir, name));
    }

    /// <summary>The names of every file a report may consist of (what an earlier report in the same folder left).</summary>
    private static readonly string[] ReportFileNames =
        [CsvFile, JsonFile, MarkdownFile, HtmlFile, GridFile, ReportPlots.FidVsGmacsFile, ReportPlots.ThroughputFile, ReportPlots.ActivityFile];

    /// <summary>Writes the report's files into <paramref name="dir"/>; returns their names in writing order.</summary>
    private static List<string> WriteFiles(string dir, IReadOnlyList<RunResult> rows, List<SampleGrid.Samples> samplesByRun, ReportOptions options, List<string> warnings)
    {
        var files = new List<string>();
        string Out(string name)
        {
            files.Add(name);
            return Path.Combine(dir, name);
        }

        ResultTable.WriteCsv(Out(CsvFile), rows);
        ResultTable.WriteJson(Out(JsonFile), rows);

        var plots = new List<(string File, string Title, string InlineSvg)>();
        var notes = new List<string>();
        ReportFiles.WriteText(Out(ReportPlots.FidVsGmacsFile), ReportPlots.FidVsGmacs(rows, standalone: true));
        plots.Add((ReportPlots.FidVsGmacsFile, "FID against GMACs per forward", ReportPlots.FidVsGmacs(rows, standalone: false)));
        ReportFiles.WriteText(Out(ReportPlots.ThroughputFile), ReportPlots.Throughput(rows, standalone: true));
        plots.Add((ReportPlots.ThroughputFile, "Images per second", ReportPlots.Throughput(rows, standalone: false)));
        if (ReportPlots.HasActivity(rows))
        {
            ReportFiles.WriteText(Out(ReportPlots.ActivityFile), ReportPlots.Activity(rows, standalone: true));
            plots.Add((ReportPlots.ActivityFile, "DyDiT: share of active heads, MLP groups and tokens per sampling step", ReportPlots.Activity(rows, standalone: false)));
        }
        else
        {
            notes.Add($"No run recorded per-step activity (step_activity: DyDiT runs do), so there is no {ReportPlots.ActivityFile}.");
        }

        ReportDocument.Grid? grid = null;
        if (options.GridSamples > 0)
        {
            var image = SampleGrid.Compose(samplesByRun, options.GridSamples);
            var png = PngWriter.Encode(image.Rgb, image.Width, image.Height);
            ReportFiles.Write(Out(GridFile), s => s.Write(png));
            grid = new ReportDocument.Grid(GridFile, png, options.GridSamples, image.CellWidth, image.CellHeight,
                rows.Select((r, i) => (r.Run, samplesByRun[i].Count, samplesByRun[i].Height, samplesByRun[i].Width)).ToArray());
        }

        var document = new ReportDocument(rows, plots, notes, grid, warnings);
        ReportFiles.WriteText(Out(MarkdownFile), document.Markdown());
        ReportFiles.WriteText(Out(HtmlFile), document.Html());
        return files;
    }

    /// <summary>
    /// Puts the finished report folder <paramref name="stage"/> in place of <paramref name="outDir"/>: a rename when
    /// there is no folder yet; otherwise the old folder is renamed aside, the new one renamed in (the old one back if
    /// that fails), and files of the old folder that are not report files (the user's) are moved into the new one. A
    /// folder that cannot be renamed (a mount point) gets the files renamed in one by one and earlier report files
    /// this report does not have removed.
    /// </summary>
    private static void Publish(string stage, string outDir, List<string> warnings)
    {
        if (!Directory.Exists(outDir))
        {
            Directory.Move(stage, outDir);
            return;
        }
        var aside = Path.Combine(Path.GetDirectoryName(outDir)!, $".{Path.GetFileName(outDir)}.old-{Guid.NewGuid():N}");
        try
        {
            Directory.Move(outDir, aside);
        }
        catch (IOException)
        {
            // A folder that cannot be renamed (a mount point, on another file system than the stage): copy the report
            // into a stage inside it, then rename file by file.
            var inner = Path.Combine(outDir, $".report.tmp-{Guid.NewGuid():N}");
            try
            {
                Directory.CreateDirectory(inner);
                foreach (var file in Directory.GetFiles(stage)) File.Copy(file, Path.Combine(inner, Path.GetFileName(file)));
                ReplaceFileByFile(inner, outDir);
            }
            finally
            {
                if (Directory.Exists(inner)) Directory.Delete(inner, recursive: true);
            }
            return;
        }
        try
        {
            Directory.Move(stage, outDir);
        }
        catch
        {
            Directory.Move(aside, outDir);
            throw;
        }
        try
        {
            foreach (var entry in new DirectoryInfo(aside).EnumerateFileSystemInfos())
            {
                if (ReportFileNames.Contains(entry.Name)) continue;
                var target = Path.Combine(outDir, entry.Name);
                if (entry is DirectoryInfo d) d.MoveTo(target);
                else ((FileInfo)entry).MoveTo(target);
            }
            Directory.Delete(aside, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"the report is complete, but files of the earlier {outDir} could not all be moved back: they are in {aside} ({e.Message})");
        }
    }

    /// <summary>A run directory's <c>metrics.json</c> (null when there is none); unreadable ones are bad input naming the file.</summary>
    private static RunMetrics? ReadMetrics(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var fs = File.OpenRead(path);
            return JsonSerializer.Deserialize<RunMetrics>(fs, RunSummary.Json);
        }
        catch (JsonException e)
        {
            throw new ReportInputException(path, $"not a valid metrics file ({{fid, sfid, inception_score, precision, recall}} as dydit-eval evaluate --json writes it): {e.Message}", e);
        }
    }
}
