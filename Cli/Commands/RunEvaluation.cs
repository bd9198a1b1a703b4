using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Merge;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Evaluation.Metrics;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// The end of a run: its metrics from the per-shard Inception features (no second pass over the images unless a shard
/// lacks them), ADM's five lines on stdout, <c>metrics.json</c>, and <c>run-summary.json</c> for <c>report</c>.
/// </summary>
internal static class RunEvaluation
{
    public const string MetricsFile = "metrics.json";

    public static async Task<(EvaluationReport Report, string Text)> EvaluateAsync(ILedger ledger, RunSpec spec, RunRecord run, LedgerRetry retry,
        int threads, string device, CancellationToken stop)
    {
        var shards = await retry.RunAsync(ct => ledger.GetShardsAsync(run.RunId, ct), stop);
        using var cpu = DeviceOptions.Create(device, threads, null, DeviceOptions.FeaturesPrecision);
        var extract = InceptionOptions.Extractor(spec.Inception!, cpu, InceptionOptions.Mode(spec.Preprocess), Evaluation.Inception.FeatureExtractor.DefaultBatchSize);
        string features = Path.Combine(run.OutputDirectory, ShardFiles.Features);
        if (!RunMerger.MergeFeatures(run, shards, features))
        {
            Console.Error.WriteLine($"run {spec.Name}: some shards have no Inception features; computing them from {ShardFiles.Samples}");
            extract(Path.Combine(run.OutputDirectory, ShardFiles.Samples)).Save(features);
        }
        var referenceFeatures = InceptionOptions.Cached(extract, spec.Inception!, spec.Preprocess, Reference.FeatureCache.Default());
        Console.Error.WriteLine($"run {spec.Name}: reference statistics from {spec.Reference}...");
        var reference = MetricInput.Load(spec.Reference!, referenceFeatures);
        var sample = MetricInput.Load(features);
        var report = EvaluateCommand.Compute(reference, sample, new EvaluationOptions(), cpu);
        var lines = EvaluateCommand.Lines(report);
        Console.WriteLine($"== {spec.Name} ({run.RunId}) vs {Path.GetFileName(spec.Reference)}");
        foreach (var line in lines) Console.WriteLine(line);
        EvaluateCommand.WriteJson(Path.Combine(run.OutputDirectory, MetricsFile), report);
        return (report, string.Join("\n", lines));
    }
}
