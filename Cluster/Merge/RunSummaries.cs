using System.Runtime.InteropServices;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Reports;
using DyDiT.Eval.Workers.Sampling;

namespace DyDiT.Eval.Cluster.Merge;

/// <summary>
/// Builds a finished run's <see cref="RunSummary"/> from what the run itself recorded: per-shard seconds and workers from
/// the ledger, per-step executed / dense multiply-accumulates and DyDiT's per-step activity from the shard files
/// (<c>step_macs</c>, <c>step_dense_macs</c>, <c>step_activity</c>), the metrics from the evaluation.
/// </summary>
public static class RunSummaries
{
    /// <param name="metrics">ADM's five values and their printed lines, when the run was evaluated.</param>
    public static RunSummary Build(RunSpec spec, RunRecord run, MergeResult merged, IReadOnlyList<ShardRecord> shards,
        IReadOnlyList<LedgerEvent> events, RunMetrics? metrics, string? evaluationText)
    {
        int steps = spec.Steps;
        var macs = new double[steps];
        double[]? dense = new double[steps];
        double[]? activity = new double[3 * steps];
        foreach (var shard in shards.OrderBy(s => s.Index))
        {
            string path = ShardFiles.PathOf(run, shard, shard.Result!.File);
            using var npz = NpzArchive.Open(path);
            Add(macs, Int64(npz, "step_macs", path, steps), 1);
            if (dense != null && npz.Contains("step_dense_macs")) Add(dense, Int64(npz, "step_dense_macs", path, steps), 1);
            else dense = null;
            if (activity != null && npz.Contains("step_activity"))
            {
                var a = npz["step_activity"];
                if (a.DType != DType.Float64 || a.Shape.Count != 2 || a.Shape[0] != steps || a.Shape[1] != 3)
                    throw new TensorFileException(path, $"array 'step_activity' is {a.DType.NumpyName()} [{string.Join(",", a.Shape)}], expected float64 [{steps},3]");
                var values = MemoryMarshal.Cast<byte, double>(a.ReadAllBytes());
                for (int i = 0; i < values.Length; i++) activity[i] += values[i] * shard.Count;
            }
            else activity = null;
        }
        // Per image and network forward: with guidance every sample is two rows of the loop batch.
        double forwards = (double)run.NumSamples * (spec.CfgScale > 1f ? 2 : 1);
        for (int s = 0; s < steps; s++)
        {
            macs[s] /= forwards;
            if (dense != null) dense[s] /= forwards;
        }
        StepActivity? shares = null;
        if (activity != null)
        {
            for (int i = 0; i < activity.Length; i++) activity[i] /= run.NumSamples;
            shares = new StepActivity
            {
                Heads = Enumerable.Range(0, steps).Select(s => activity[3 * s]).ToArray(),
                Groups = Enumerable.Range(0, steps).Select(s => activity[3 * s + 1]).ToArray(),
                Tokens = Enumerable.Range(0, steps).Select(s => activity[3 * s + 2]).ToArray(),
            };
        }
        var claimed = events.Where(e => e.Kind == LedgerEventKind.Claimed).Select(e => e.At).DefaultIfEmpty(run.CreatedAt).Min();
        var completed = events.Where(e => e.Kind == LedgerEventKind.Completed).Select(e => e.At).DefaultIfEmpty(claimed).Max();
        return new RunSummary
        {
            RunId = run.RunId,
            Name = spec.Name,
            Model = DisplayModel(spec),
            Net = DiffusionModels.NetKind(spec.Model, spec.Checkpoint, spec.Net),
            Checkpoint = spec.Checkpoint,
            CheckpointSha256 = ContentHashes.Of(spec.Checkpoint),
            Lambda = spec.Lambda,
            RandomWeights = spec.Demo,
            NumSamples = checked((int)run.NumSamples),
            Seed = spec.Seed,
            CfgScale = spec.CfgScale,
            Steps = steps,
            Sampler = spec.Sampler,
            Labels = spec.Labels is "uniform" or "balanced" ? spec.Labels : "file " + Path.GetFileName(spec.Labels),
            ImageSize = merged.ImageSize,
            ShardSize = run.ShardSize,
            Workers = merged.Workers,
            Device = string.Join(", ", shards.Select(s => s.Result!.Host).Distinct().Order()) is { Length: > 0 } hosts ? $"cpu ({hosts})" : "cpu",
            GenerationSeconds = merged.GenerationSeconds,
            WallSeconds = Math.Max(0, (completed - claimed).TotalSeconds),
            MacsPerForward = macs.Average(),
            DenseMacsPerForward = dense?.Average(),
            StepMacsPerForward = macs,
            StepActivity = shares,
            SamplesFile = Path.GetFileName(merged.Path),
            Reference = spec.Reference,
            Inception = spec.Inception,
            Metrics = metrics,
            EvaluationText = evaluationText,
            CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    private static string DisplayModel(RunSpec spec) =>
        DiffusionModels.IsPreset(spec.Model) ? spec.Model : Path.GetFileNameWithoutExtension(spec.Model);

    private static long[] Int64(NpzArchive npz, string name, string path, int steps)
    {
        if (!npz.Contains(name)) throw new TensorFileException(path, $"has no '{name}' (written by every worker of this version)");
        var values = IntegerVectors.Read(npz[name], path, $"array '{name}'");
        if (values.Length != steps) throw new TensorFileException(path, $"array '{name}' has {values.Length} steps, the run {steps}");
        return values;
    }

    private static void Add(double[] sum, long[] values, double weight)
    {
        for (int i = 0; i < sum.Length; i++) sum[i] += values[i] * weight;
    }
}
