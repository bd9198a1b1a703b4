using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// <c>run-summary.json</c>: what a finished run did and what it cost, written by <c>dydit-eval run</c> next to its
/// <c>samples.npz</c> and read by <c>dydit-eval report</c>. The file is the contract between the two (and anyone
/// comparing runs by hand), so the names are snake_case JSON, every key is written (absent values as <c>null</c>),
/// and a reader accepts a file without the optional keys: they read as <c>null</c> (or the default shown).
/// Required: <c>run_id</c>, <c>model</c>, <c>net</c>, <c>num_samples</c>.
/// </summary>
public sealed record RunSummary
{
    /// <summary>The file's name inside a run directory.</summary>
    public const string FileName = "run-summary.json";

    /// <summary>The three networks a run can sample with.</summary>
    public static IReadOnlyList<string> Nets { get; } = ["dit", "dydit", "sparsedit"];

    /// <summary>Unique id of the run (the ledger's); names the run when <see cref="Name"/> is absent.</summary>
    public required string RunId { get; init; }

    /// <summary>Human name from the run config ("dydit-0.7-fid50k"); optional.</summary>
    public string? Name { get; init; }

    /// <summary>Display name of the architecture, e.g. "DiT-XL/2" (DyDiT keeps its DiT backbone's name).</summary>
    public required string Model { get; init; }

    /// <summary>"dit", "dydit" or "sparsedit": which network sampled. The DiT run is the cost baseline of a report.</summary>
    public required string Net { get; init; }

    /// <summary>Path of the checkpoint as the run config named it.</summary>
    public string? Checkpoint { get; init; }

    /// <summary>sha256 of the checkpoint file (hex), so a report shows which weights even when paths differ across hosts.</summary>
    [JsonPropertyName("checkpoint_sha256")]
    public string? CheckpointSha256 { get; init; }

    /// <summary>DyDiT's target FLOPs ratio λ from the run config; null for DiT (and where a config gives none).</summary>
    public double? Lambda { get; init; }

    /// <summary>True when the weights are the demo assets (random): the numbers then measure the pipeline only.</summary>
    public bool RandomWeights { get; init; }

    /// <summary>Samples in <c>samples.npz</c>.</summary>
    public required int NumSamples { get; init; }

    /// <summary>The run's global seed.</summary>
    public long Seed { get; init; }

    /// <summary>Classifier-free guidance scale (1 = none).</summary>
    public double CfgScale { get; init; }

    /// <summary>Sampling steps (the respaced chain's length).</summary>
    public int Steps { get; init; }

    /// <summary>"ddpm" or "ddim".</summary>
    public string? Sampler { get; init; }

    /// <summary>The label mode as given ("uniform", "balanced", a file name, a list).</summary>
    public string? Labels { get; init; }

    /// <summary>Image side in pixels.</summary>
    public int ImageSize { get; init; }

    /// <summary>Samples per shard.</summary>
    public int ShardSize { get; init; }

    /// <summary>Distinct workers that produced shards.</summary>
    public int Workers { get; init; }

    /// <summary>Where it ran, as text ("cpu (16 threads)", "cuda:0 NVIDIA H200").</summary>
    public string? Device { get; init; }

    /// <summary>Sum over shards of the seconds each took to generate: the compute the samples cost, whatever the parallelism.</summary>
    public double GenerationSeconds { get; init; }

    /// <summary>Wall-clock seconds from start to the merged <c>samples.npz</c>.</summary>
    public double WallSeconds { get; init; }

    /// <summary>Mean multiply-accumulates one network forward executed per image, over the run's sampling steps (what DyDiT saves).</summary>
    public double MacsPerForward { get; init; }

    /// <summary>The dense DiT count for the same network shape (what it would cost with every head, channel and token); null if unknown.</summary>
    public double? DenseMacsPerForward { get; init; }

    /// <summary>Executed MACs per image per forward at each sampling step, in sampling order (first step first).</summary>
    public IReadOnlyList<double> StepMacsPerForward { get; init; } = [];

    /// <summary>DyDiT only: per step, the share of active attention heads, MLP channel groups and tokens.</summary>
    public StepActivity? StepActivity { get; init; }

    /// <summary>The sample batch, relative to the run directory.</summary>
    public string SamplesFile { get; init; } = "samples.npz";

    /// <summary>The ADM reference batch evaluated against, or null.</summary>
    public string? Reference { get; init; }

    /// <summary>The Inception weights used for the metrics, or null.</summary>
    public string? Inception { get; init; }

    /// <summary>The five metrics, or null when the run was not evaluated.</summary>
    public RunMetrics? Metrics { get; init; }

    /// <summary>ADM's five result lines exactly as printed (people paste them into papers and issues), or null.</summary>
    public string? EvaluationText { get; init; }

    /// <summary>When the summary was written (ISO-8601 with offset).</summary>
    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>
    /// The options of the file contract: snake_case names, nulls written, indented, non-ASCII (λ, paths) kept readable,
    /// NaN/Infinity as the strings "NaN"/"Infinity" (a failed metric must not make the whole file unwritable), and
    /// nullability respected on reading (a <c>null</c> where the contract has no null is an error naming the key).
    /// </summary>
    internal static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        RespectNullableAnnotations = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>
    /// Reads and checks a summary. Throws <see cref="ReportInputException"/> naming the file when it is missing, is not
    /// JSON, lacks a required key or breaks the contract (unknown net, no samples, negative times).
    /// </summary>
    public static RunSummary Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new ReportInputException(path, $"not found — a finished run directory holds {FileName} (dydit-eval run writes it when the run completes)");
        RunSummary? summary;
        try
        {
            using var fs = File.OpenRead(path);
            summary = JsonSerializer.Deserialize<RunSummary>(fs, Json);
        }
        catch (JsonException e)
        {
            throw new ReportInputException(path, $"not a valid {FileName}: {e.Message}", e);
        }
        if (summary == null) throw new ReportInputException(path, $"holds null, not a {FileName} object");
        if (summary.Problem() is string problem) throw new ReportInputException(path, problem);
        return summary;
    }

    /// <summary>
    /// Writes the summary to <paramref name="path"/> (every key, UTF-8) through a temporary file renamed into place, so
    /// a report never reads half a summary. Throws <see cref="InvalidOperationException"/> when the record breaks the
    /// contract <see cref="Load"/> checks.
    /// </summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Problem() is string problem) throw new InvalidOperationException($"run summary for {path}: {problem}");
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                JsonSerializer.Serialize(fs, this, Json);
                fs.WriteByte((byte)'\n');
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    /// <summary>The first contract violation, or null.</summary>
    private string? Problem()
    {
        if (string.IsNullOrWhiteSpace(RunId)) return "run_id is empty";
        if (string.IsNullOrWhiteSpace(Model)) return "model is empty";
        if (!Nets.Contains(Net)) return $"net is '{Net}'; expected one of {string.Join(", ", Nets)}";
        if (NumSamples <= 0) return $"num_samples is {NumSamples}; a finished run has at least one sample";
        if (!(GenerationSeconds >= 0)) return $"generation_seconds is {GenerationSeconds}; expected seconds ≥ 0";
        if (!(WallSeconds >= 0)) return $"wall_seconds is {WallSeconds}; expected seconds ≥ 0";
        if (!(MacsPerForward >= 0)) return $"macs_per_forward is {MacsPerForward}; expected a count ≥ 0";
        if (string.IsNullOrWhiteSpace(SamplesFile)) return "samples_file is empty";
        return null;
    }
}

/// <summary>ADM's five numbers for a run; each null when it could not be computed (e.g. no logits: no Inception Score).</summary>
public sealed record RunMetrics
{
    public double? Fid { get; init; }

    public double? Sfid { get; init; }

    public double? InceptionScore { get; init; }

    public double? Precision { get; init; }

    public double? Recall { get; init; }
}

/// <summary>
/// DyDiT's per-step compute allocation: for each sampling step (sampling order), the share in [0, 1] of attention
/// heads, MLP channel groups and tokens its routers kept, averaged over the images and layers of the run. A series is
/// null when it was not recorded.
/// </summary>
public sealed record StepActivity
{
    public IReadOnlyList<double>? Heads { get; init; }

    public IReadOnlyList<double>? Groups { get; init; }

    public IReadOnlyList<double>? Tokens { get; init; }
}
