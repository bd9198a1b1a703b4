using System.Globalization;
using System.Net;
using System.Text;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// <c>report.md</c> and <c>report.html</c> from the same content: title (with the random-weights warning when any
/// run used demo weights), the comparison table, the settings, ADM's lines verbatim per run, the plots and the sample
/// grid. The HTML is one self-contained file (inline CSS, inline SVG, the PNG as a data URI) so it can be mailed or
/// attached to an issue; every text from a summary is escaped. Nothing time-dependent is written: the same runs give
/// the same bytes.
/// </summary>
internal sealed class ReportDocument
{
    /// <summary>The title's warning, in both documents, when any run's weights are random.</summary>
    public const string RandomWeightsTitle = "RANDOM WEIGHTS: these numbers measure nothing but the pipeline";

    private readonly IReadOnlyList<RunResult> _rows;
    private readonly IReadOnlyList<(string File, string Title, string InlineSvg)> _plots;
    private readonly IReadOnlyList<string> _notes;
    private readonly Grid? _grid;
    private readonly IReadOnlyList<string> _warnings;

    /// <summary>The sample grid as the documents show it.</summary>
    internal sealed record Grid(string File, byte[] Png, int Columns, int CellWidth, int CellHeight, IReadOnlyList<(string Run, int Count, int Height, int Width)> Rows);

    public ReportDocument(IReadOnlyList<RunResult> rows, IReadOnlyList<(string File, string Title, string InlineSvg)> plots,
        IReadOnlyList<string> plotNotes, Grid? grid, IReadOnlyList<string> warnings)
    {
        _rows = rows;
        _plots = plots;
        _notes = plotNotes;
        _grid = grid;
        _warnings = warnings;
    }

    private bool RandomWeights => _rows.Any(r => r.Summary.RandomWeights);

    public string Title => RandomWeights
        ? $"DyDiT.Eval report — {RandomWeightsTitle}"
        : _rows.Count <= 4 ? $"DyDiT.Eval report: {string.Join(" vs ", _rows.Select(r => r.Run))}" : $"DyDiT.Eval report: {_rows.Count} runs";

    private string RandomWeightsNotice =>
        $"Random weights: {string.Join(", ", _rows.Where(r => r.Summary.RandomWeights).Select(r => r.Run))} sampled with random (demo) weights. " +
        "Their images are noise-like, and FID, sFID, Inception Score, precision and recall say nothing about any model; the report " +
        "exercises the pipeline (sampling, sharding, merging, evaluation, reporting) and its costs only.";

    private string Baseline => _rows.FirstOrDefault(r => r.Summary.Net == "dit")?.Run is string dit
        ? $"vs DiT: MACs relative to {dit}."
        : "vs DiT: no DiT run in this report, so no ratio.";

    private const string CostNote =
        "GMACs/forward: mean multiply-accumulates executed per image per network forward over the sampling steps " +
        "(macs_per_forward). images/s and s / 1,000 images: from the summed shard generation time, so they do not depend on how many workers ran in parallel.";

    // ---------- the comparison's cells, shared by both documents ----------

    private static readonly string[] ComparisonHeader =
        ["Run", "Model", "Net", "Checkpoint", "λ", "Samples", "GMACs/forward", "vs DiT", "images/s", "s / 1,000 images", "FID", "sFID", "IS", "Precision", "Recall", "Reference"];

    private static string[] ComparisonCells(RunResult r) =>
    [
        r.Run, r.Summary.Model, r.Summary.Net, FileName(r.Summary.Checkpoint), Number(r.Summary.Lambda, "0.###"),
        r.Summary.NumSamples.ToString("N0", CultureInfo.InvariantCulture), Gmacs(r.GmacsPerForward),
        r.GmacsVsDit is double v ? v.ToString("F3", CultureInfo.InvariantCulture) + "×" : Dash,
        Sig(r.ImagesPerSecond), Sig(r.SecondsPer1000),
        Number(r.Metrics?.Fid, "F2"), Number(r.Metrics?.Sfid, "F2"), Number(r.Metrics?.InceptionScore, "F2"),
        Number(r.Metrics?.Precision, "F3"), Number(r.Metrics?.Recall, "F3"), FileName(r.Summary.Reference),
    ];

    private static readonly string[] SettingsHeader =
        ["Run", "cfg scale", "steps", "sampler", "seed", "labels", "image size", "shard size", "workers", "device", "generation s", "wall s", "dense GMACs/forward", "created"];

    private static string[] SettingsCells(RunResult r)
    {
        var s = r.Summary;
        return
        [
            r.Run, Number(s.CfgScale, "0.###"), Int(s.Steps), s.Sampler ?? Dash, s.Seed.ToString(CultureInfo.InvariantCulture), s.Labels ?? Dash,
            Int(s.ImageSize), Int(s.ShardSize), Int(s.Workers), s.Device ?? Dash, Number(s.GenerationSeconds, "F1"), Number(s.WallSeconds, "F1"),
            Gmacs(s.DenseMacsPerForward / 1e9), s.CreatedAt?.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture) ?? Dash,
        ];
    }

    private static readonly string[] FilesHeader = ["Run", "checkpoint", "checkpoint sha256", "samples", "reference", "inception"];

    private static string[] FilesCells(RunResult r) =>
    [
        r.Run, r.Summary.Checkpoint ?? Dash, r.Summary.CheckpointSha256 ?? Dash, r.Summary.SamplesFile, r.Summary.Reference ?? Dash, r.Summary.Inception ?? Dash,
    ];

    private string GridCaption =>
        $"Rows, top to bottom: {string.Join(", ", _grid!.Rows.Select(r => r.Run))}. Column k is sample k of every run (same index: same seed and label). " +
        (_grid.Rows.Any(r => r.Height != _grid.CellHeight || r.Width != _grid.CellWidth)
            ? $"Smaller images are scaled to {_grid.CellWidth}×{_grid.CellHeight} by nearest neighbour. "
            : "") +
        (_grid.Rows.Any(r => r.Count < _grid.Columns) ? "A run with fewer samples leaves its last cells black." : "");

    private static string EvaluationMissing(RunResult r) => r.Metrics == null
        ? "Not evaluated (no metrics in run-summary.json or metrics.json)."
        : "ADM's lines were not recorded; the numbers in the table come from the run's metrics.";

    // ---------- Markdown ----------

    public string Markdown()
    {
        var md = new StringBuilder();
        md.Append("# ").Append(MdText(Title)).Append("\n\n");
        if (RandomWeights) md.Append("> **").Append(MdText(RandomWeightsNotice)).Append("**\n\n");
        foreach (var w in _warnings) md.Append("> Warning: ").Append(MdText(w)).Append('\n');
        if (_warnings.Count > 0) md.Append('\n');

        md.Append("## Comparison\n\n");
        MdTable(md, ComparisonHeader, _rows.Select(ComparisonCells), codeColumns: [3, 15]);
        md.Append('\n').Append(MdText(CostNote)).Append(' ').Append(MdText(Baseline)).Append("\n\n");

        md.Append("## Run settings\n\n");
        MdTable(md, SettingsHeader, _rows.Select(SettingsCells), codeColumns: [5]);
        md.Append('\n');
        MdTable(md, FilesHeader, _rows.Select(FilesCells), codeColumns: [1, 2, 3, 4, 5]);

        md.Append("\n## Evaluation\n\nADM's evaluator lines, verbatim.\n");
        foreach (var r in _rows)
        {
            md.Append("\n### ").Append(MdText(r.Run)).Append("\n\n");
            if (r.Summary.EvaluationText is string text) md.Append(CodeBlock(text));
            else md.Append(MdText(EvaluationMissing(r))).Append('\n');
        }

        md.Append("\n## Plots\n\n");
        foreach (var (file, title, _) in _plots) md.Append("![").Append(MdText(title)).Append("](").Append(file).Append(")\n\n");
        foreach (var note in _notes) md.Append(MdText(note)).Append("\n\n");

        if (_grid != null)
        {
            md.Append("## Samples\n\n![samples](").Append(_grid.File).Append(")\n\n").Append(MdText(GridCaption)).Append('\n');
        }
        return md.ToString();
    }

    private static void MdTable(StringBuilder md, string[] header, IEnumerable<string[]> rows, int[] codeColumns)
    {
        md.Append("| ").Append(string.Join(" | ", header.Select(MdText))).Append(" |\n");
        md.Append('|').Append(string.Concat(header.Select(_ => " --- |"))).Append('\n');
        foreach (var cells in rows)
            md.Append("| ").Append(string.Join(" | ", cells.Select((c, i) => c == Dash ? c : codeColumns.Contains(i) ? MdCode(c) : MdText(c)))).Append(" |\n");
    }

    /// <summary>Plain text safe in Markdown (and in a table cell): punctuation that Markdown or HTML would act on is backslash-escaped, line breaks become spaces.</summary>
    internal static string MdText(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (c is '\r' or '\n') sb.Append(' ');
            else if ("\\`*_[]<>|~&".Contains(c)) sb.Append('\\').Append(c);
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>An inline code span (paths, hashes): backticks inside are fenced by a longer run; '|' is escaped for tables.</summary>
    private static string MdCode(string text)
    {
        string flat = text.Replace('\r', ' ').Replace('\n', ' ').Replace("|", "\\|");
        string fence = new('`', LongestRun(flat, '`') + 1);
        return flat.Contains('`') ? $"{fence} {flat} {fence}" : $"{fence}{flat}{fence}";
    }

    /// <summary>A fenced code block holding <paramref name="text"/> exactly (a fence longer than any backtick run inside it).</summary>
    private static string CodeBlock(string text)
    {
        string fence = new('`', Math.Max(3, LongestRun(text, '`') + 1));
        string body = text.Replace("\r\n", "\n");
        return $"{fence}\n{body}{(body.EndsWith('\n') ? "" : "\n")}{fence}\n";
    }

    private static int LongestRun(string text, char c)
    {
        int best = 0, run = 0;
        foreach (char x in text)
        {
            run = x == c ? run + 1 : 0;
            best = Math.Max(best, run);
        }
        return best;
    }

    // ---------- HTML ----------

    public string Html()
    {
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        h.Append("<title>").Append(Esc(Title)).Append("</title>\n<style>\n").Append(Css).Append("</style>\n</head>\n<body>\n");
        h.Append("<h1>").Append(Esc(Title)).Append("</h1>\n");
        if (RandomWeights) h.Append("<p class=\"random-weights\"><strong>").Append(Esc(RandomWeightsNotice)).Append("</strong></p>\n");
        foreach (var w in _warnings) h.Append("<p class=\"warning\">Warning: ").Append(Esc(w)).Append("</p>\n");

        h.Append("<h2>Comparison</h2>\n");
        HtmlTable(h, "comparison", ComparisonHeader, _rows.Select(ComparisonCells), numericFrom: 4);
        h.Append("<p class=\"note\">").Append(Esc(CostNote)).Append(' ').Append(Esc(Baseline)).Append("</p>\n");

        h.Append("<h2>Run settings</h2>\n");
        HtmlTable(h, "settings", SettingsHeader, _rows.Select(SettingsCells), numericFrom: int.MaxValue);
        HtmlTable(h, "files", FilesHeader, _rows.Select(FilesCells), numericFrom: int.MaxValue);

        h.Append("<h2>Evaluation</h2>\n<p>ADM's evaluator lines, verbatim.</p>\n");
        foreach (var r in _rows)
        {
            h.Append("<h3>").Append(Esc(r.Run)).Append("</h3>\n");
            if (r.Summary.EvaluationText is string text) h.Append("<pre><code>").Append(Esc(text.Replace("\r\n", "\n"))).Append("</code></pre>\n");
            else h.Append("<p class=\"note\">").Append(Esc(EvaluationMissing(r))).Append("</p>\n");
        }

        h.Append("<h2>Plots</h2>\n");
        foreach (var (file, title, svg) in _plots)
            h.Append("<figure class=\"plot\" data-file=\"").Append(Esc(file)).Append("\">\n").Append(svg)
             .Append("<figcaption>").Append(Esc(title)).Append(" (").Append(Esc(file)).Append(")</figcaption>\n</figure>\n");
        foreach (var note in _notes) h.Append("<p class=\"note\">").Append(Esc(note)).Append("</p>\n");

        if (_grid != null)
        {
            h.Append("<h2>Samples</h2>\n<figure class=\"grid\">\n<img alt=\"sample grid\" width=\"").Append(Gw()).Append("\" src=\"data:image/png;base64,")
             .Append(Convert.ToBase64String(_grid.Png)).Append("\">\n<figcaption>").Append(Esc(GridCaption)).Append("</figcaption>\n</figure>\n");
        }
        h.Append("</body>\n</html>\n");
        return h.ToString();
    }

    private string Gw() => (_grid!.Columns * (_grid.CellWidth + SampleGrid.Padding) + SampleGrid.Padding).ToString(CultureInfo.InvariantCulture);

    private static void HtmlTable(StringBuilder h, string cssClass, string[] header, IEnumerable<string[]> rows, int numericFrom)
    {
        h.Append("<table class=\"").Append(cssClass).Append("\">\n<thead><tr>");
        foreach (var c in header) h.Append("<th>").Append(Esc(c)).Append("</th>");
        h.Append("</tr></thead>\n<tbody>\n");
        foreach (var cells in rows)
        {
            h.Append("<tr>");
            for (int i = 0; i < cells.Length; i++)
                h.Append(i >= numericFrom && i < header.Length - 1 ? "<td class=\"num\">" : "<td>").Append(Esc(cells[i])).Append("</td>");
            h.Append("</tr>\n");
        }
        h.Append("</tbody>\n</table>\n");
    }

    private const string Css = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
        h1 { font-size: 1.5em; }
        table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
        th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
        th { background: #f3f3f3; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
        .random-weights { background: #fff1f0; border: 2px solid #e15759; padding: 0.8em; }
        .warning { background: #fffbe6; border: 1px solid #edc948; padding: 0.5em; }
        .note { color: #555; font-size: 0.9em; }
        figure { margin: 1.5em 0; }
        figure.grid img { max-width: 100%; height: auto; image-rendering: pixelated; }

        """;

    /// <summary>HTML-escapes text (also quotes, so it is safe in attributes).</summary>
    private static string Esc(string text) => WebUtility.HtmlEncode(text);

    // ---------- numbers ----------

    private const string Dash = "—";

    // Two decimals for real models (118.64); three significant digits below 1 GMAC, where the demo's tiny models live.
    private static string Gmacs(double? v) => v is double d && Math.Abs(d) < 1 && d != 0 ? Number(d, "G3") : Number(v, "F2");

    private static string Number(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : Dash;

    private static string Sig(double? v) => v is double d ? SvgChart.Significant(d, 4) : Dash;

    private static string Int(int v) => v > 0 ? v.ToString(CultureInfo.InvariantCulture) : Dash;

    private static string FileName(string? path) => string.IsNullOrEmpty(path) ? Dash : Path.GetFileName(path.TrimEnd('/', '\\')) is { Length: > 0 } f ? f : path;
}
