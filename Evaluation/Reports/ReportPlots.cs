namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>The report's three plots, as SVG text (<c>standalone</c>: with the XML declaration, for the .svg files).</summary>
internal static class ReportPlots
{
    public const string FidVsGmacsFile = "fid_vs_gmacs.svg", ThroughputFile = "throughput.svg", ActivityFile = "dydit_activity.svg";

    /// <summary>FID against GMACs per forward, one labelled point per run with an FID; a notice when no run has one.</summary>
    public static string FidVsGmacs(IReadOnlyList<RunResult> rows, bool standalone)
    {
        const string title = "FID vs compute (lower left is better)";
        var points = rows.Where(r => r.Metrics?.Fid is double f && double.IsFinite(f))
            .Select(r => (r.Run, r.GmacsPerForward, r.Metrics!.Fid!.Value)).ToArray();
        return points.Length == 0
            ? SvgChart.Message(title, "No run has an FID: evaluate against a reference batch to place the runs here.", standalone)
            : SvgChart.Scatter(title, "GMACs per image per network forward", FidLabel(rows), points, standalone);
    }

    /// <summary>Images per second of summed shard time, one bar per run; a notice when no run recorded its time.</summary>
    public static string Throughput(IReadOnlyList<RunResult> rows, bool standalone)
    {
        const string title = "Generation throughput (images/s over summed shard time)";
        var bars = rows.Where(r => r.ImagesPerSecond is double v && double.IsFinite(v)).Select(r => (r.Run, r.ImagesPerSecond!.Value)).ToArray();
        return bars.Length == 0
            ? SvgChart.Message(title, "No run recorded its generation time.", standalone)
            : SvgChart.Bars(title, "images per second", bars, standalone);
    }

    /// <summary>True when some run has a non-empty step-activity series (DyDiT runs), i.e. there is an activity plot.</summary>
    public static bool HasActivity(IReadOnlyList<RunResult> rows) => rows.Any(r => Series(r).Any(s => s.Values.Count > 0));

    /// <summary>
    /// Per sampling step (1 = first step taken), the share of active heads (solid), MLP channel groups (dashed) and
    /// tokens (dotted); one colour per run. Only for runs with <see cref="RunSummary.StepActivity"/>.
    /// </summary>
    public static string Activity(IReadOnlyList<RunResult> rows, bool standalone)
    {
        var lines = new List<SvgChart.LineSeries>();
        for (int r = 0; r < rows.Count; r++)
        {
            string colour = SvgChart.Palette[r % SvgChart.Palette.Count];
            foreach (var (kind, dash, values) in Series(rows[r]))
            {
                if (values.Count == 0) continue;
                var points = values.Select((v, i) => ((double)(i + 1), v)).Where(p => double.IsFinite(p.v)).ToArray();
                lines.Add(new SvgChart.LineSeries($"{rows[r].Run} · {kind}", colour, dash, points));
            }
        }
        return SvgChart.Lines("DyDiT: active share per sampling step", "sampling step (first → last)", "share active", lines, (0, 1), standalone);
    }

    private static IEnumerable<(string Kind, string? Dash, IReadOnlyList<double> Values)> Series(RunResult row)
    {
        var a = row.Summary.StepActivity;
        if (a == null) yield break;
        if (a.Heads != null) yield return ("heads", null, a.Heads);
        if (a.Groups != null) yield return ("MLP groups", "7 4", a.Groups);
        if (a.Tokens != null) yield return ("tokens", "2 3", a.Tokens);
    }

    // "FID-50K" when all evaluated runs used the same number of samples (the usual protocol name), plain "FID" otherwise.
    private static string FidLabel(IReadOnlyList<RunResult> rows)
    {
        var counts = rows.Where(r => r.Metrics?.Fid != null).Select(r => r.Summary.NumSamples).Distinct().ToArray();
        return counts.Length == 1 && counts[0] % 1000 == 0 ? $"FID-{counts[0] / 1000}K" : "FID";
    }
}
