using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>Options of an ADM-style evaluation.</summary>
public sealed record EvaluationOptions(int SplitSize = InceptionScore.DefaultSplitSize, DistanceMode Distances = DistanceMode.Fp16);

/// <summary>A metric's value, or why it could not be computed.</summary>
public sealed record MetricValue(double? Value, string? Unavailable)
{
    public static MetricValue Of(double v) => new(v, null);

    public static MetricValue Missing(string why) => new(null, why);
}

/// <summary>The five numbers ADM's evaluator prints, plus set sizes and warnings.</summary>
public sealed record EvaluationReport(
    MetricValue InceptionScore, MetricValue Fid, MetricValue Sfid, MetricValue Precision, MetricValue Recall,
    int? ReferenceCount, int? SampleCount, IReadOnlyList<string> Warnings);

/// <summary>
/// ADM's <c>evaluator.py</c> main, on features and statistics: IS from the sample logits, FID on pool statistics,
/// sFID on spatial statistics (sample first, reference second), precision/recall on pool features.
/// </summary>
public static class AdmEvaluation
{
    public static EvaluationReport Run(MetricInput reference, MetricInput sample, EvaluationOptions options, IBackend backend,
        Action<string>? status = null, IProgress<PrecisionRecallProgress>? prProgress = null)
    {
        var warnings = new List<string>();
        CheckSameDimension(sample.PoolStatistics!, reference.PoolStatistics!, sample.Pool != null ? "pool" : "mu", sample, reference);
        if (sample.SpatialStatistics != null && reference.SpatialStatistics != null)
            CheckSameDimension(sample.SpatialStatistics, reference.SpatialStatistics, sample.StatisticsWerePrecomputed ? "mu_s" : "spatial", sample, reference);

        status?.Invoke("computing Inception Score...");
        MetricValue inceptionScore = sample.Logits is { } logits
            ? MetricValue.Of(InceptionScore.FromLogits(logits, sample.LogitsDim, options.SplitSize).Score)
            : MetricValue.Missing(sample.Pool is null ? "sample side has statistics only" : "sample features have no 'logits'");

        status?.Invoke("computing FID...");
        var fid = Frechet(sample.PoolStatistics!, reference.PoolStatistics!, "pool", warnings);

        status?.Invoke("computing sFID...");
        MetricValue sfid = sample.SpatialStatistics is null
            ? MetricValue.Missing($"{Side(sample, "sample")} has no spatial features or mu_s/sigma_s")
            : reference.SpatialStatistics is null
                ? MetricValue.Missing($"{Side(reference, "reference")} has no spatial features or mu_s/sigma_s")
                : Frechet(sample.SpatialStatistics, reference.SpatialStatistics, "spatial", warnings);

        MetricValue precision, recall;
        if (sample.Pool is null || reference.Pool is null)
        {
            string why = $"{(sample.Pool is null ? "sample" : "reference")} side has statistics only (precision/recall need its pool features)";
            precision = recall = MetricValue.Missing(why);
        }
        else
        {
            status?.Invoke("computing precision and recall...");
            int minimum = PrecisionRecall.Neighbourhood + 1;
            if (sample.Count < minimum || reference.Count < minimum)
            {
                precision = recall = MetricValue.Missing(
                    $"precision/recall need at least {minimum} features per side (k = {PrecisionRecall.Neighbourhood} neighbours); " +
                    $"got {reference.Count} reference and {sample.Count} sample");
            }
            else
            {
                var pr = PrecisionRecall.Compute(reference.Pool, sample.Pool, sample.PoolDim, backend, options.Distances,
                    progress: prProgress);
                precision = MetricValue.Of(pr.Precision);
                recall = MetricValue.Of(pr.Recall);
            }
        }
        return new EvaluationReport(inceptionScore, fid, sfid, precision, recall, reference.Count, sample.Count, warnings);
    }

    private static void CheckSameDimension(FeatureStatistics s, FeatureStatistics r, string array, MetricInput sample, MetricInput reference)
    {
        if (s.Dim != r.Dim)
            throw new TensorFileException(sample.Path, $"array '{array}' has dimension {s.Dim} but the reference {reference.Path} has {r.Dim}");
    }

    private static MetricValue Frechet(FeatureStatistics s, FeatureStatistics r, string what,
        List<string> warnings)
    {
        var result = FrechetDistance.Compute(s, r);
        if (result.Warning != null) warnings.Add($"{what}: {result.Warning}");
        return MetricValue.Of(result.Distance);
    }

    private static string Side(MetricInput input, string name) => $"{name} side ({Path.GetFileName(input.Path)})";
}
