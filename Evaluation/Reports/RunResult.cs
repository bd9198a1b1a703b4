namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// One run as a report compares it: its summary, the name it is shown under, and the numbers derived from the
/// summary — throughput from the summed shard seconds (not wall time, so runs on different worker counts compare),
/// GMACs per forward, and the cost relative to the DiT run of the same report.
/// </summary>
public sealed record RunResult
{
    /// <summary>
    /// The name the run is shown under: its <c>name</c>, else its model ("DyDiT λ=0.7 (DiT-XL/2)" for DyDiT); made unique
    /// within a report by adding the run id (and a counter) where names collide.
    /// </summary>
    public required string Run { get; init; }

    public required RunSummary Summary { get; init; }

    /// <summary>The run's metrics (<see cref="RunSummary.Metrics"/>, or its directory's <c>metrics.json</c>), or null.</summary>
    public RunMetrics? Metrics { get; init; }

    /// <summary><c>num_samples / generation_seconds</c>; null without generation time.</summary>
    public double? ImagesPerSecond { get; init; }

    /// <summary><c>1000 · generation_seconds / num_samples</c>; null without generation time.</summary>
    public double? SecondsPer1000 { get; init; }

    /// <summary><c>macs_per_forward / 1e9</c>.</summary>
    public double GmacsPerForward { get; init; }

    /// <summary>This run's <c>macs_per_forward</c> over that of the report's first run with net "dit"; null without one.</summary>
    public double? GmacsVsDit { get; init; }

    /// <summary>
    /// Derives the compared rows, in the given order. <paramref name="metrics"/> supplies metrics for runs whose summary
    /// has none (e.g. from a <c>metrics.json</c> next to it); it may be null.
    /// </summary>
    public static IReadOnlyList<RunResult> Compare(IReadOnlyList<RunSummary> runs, IReadOnlyList<RunMetrics?>? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (metrics != null && metrics.Count != runs.Count)
            throw new ArgumentException($"{metrics.Count} metrics for {runs.Count} runs", nameof(metrics));
        var baseline = runs.FirstOrDefault(r => r.Net == "dit");
        double? ditMacs = baseline is { MacsPerForward: > 0 } ? baseline.MacsPerForward : null;
        var names = UniqueNames(runs);
        var rows = new RunResult[runs.Count];
        for (int i = 0; i < runs.Count; i++)
        {
            var s = runs[i];
            bool timed = s.GenerationSeconds > 0;
            rows[i] = new RunResult
            {
                Run = names[i],
                Summary = s,
                Metrics = s.Metrics ?? metrics?[i],
                ImagesPerSecond = timed ? s.NumSamples / s.GenerationSeconds : null,
                SecondsPer1000 = timed ? 1000 * s.GenerationSeconds / s.NumSamples : null,
                GmacsPerForward = s.MacsPerForward / 1e9,
                GmacsVsDit = ditMacs is double d ? s.MacsPerForward / d : null,
            };
        }
        return rows;
    }

    // A run without a name is shown by its network: DyDiT keeps its backbone's model name, so it needs its own.
    private static string DefaultName(RunSummary r)
    {
        if (!string.IsNullOrWhiteSpace(r.Name)) return r.Name!;
        if (r.Net != "dydit") return r.Model;
        return r.Lambda is double l ? $"DyDiT λ={l.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} ({r.Model})" : $"DyDiT ({r.Model})";
    }

    // Two runs named alike (the same preset twice) would be one point, one bar and an ambiguous row: add the run id, then a counter.
    private static string[] UniqueNames(IReadOnlyList<RunSummary> runs)
    {
        var names = runs.Select(DefaultName).ToArray();
        var counts = names.CountBy(n => n, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
            if (counts[names[i]] > 1 && names[i] != runs[i].RunId)
                names[i] = $"{names[i]} ({runs[i].RunId})";
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
        {
            int k = seen.GetValueOrDefault(names[i]) + 1;
            seen[names[i]] = k;
            if (k > 1) names[i] = $"{names[i]} #{k}";
        }
        return names;
    }
}
