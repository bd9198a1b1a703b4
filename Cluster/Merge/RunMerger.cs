using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Inception;

namespace DyDiT.Eval.Cluster.Merge;

/// <summary>What a merge produced: the file, its sha256, and the run's summed cost over its shards.</summary>
public sealed record MergeResult(string Path, string Sha256, long Samples, int ImageSize, double GenerationSeconds, long MultiplyAccumulates,
    int Workers);

/// <summary>
/// Joins a finished run's shards into one ADM sample batch (<c>arr_0</c> uint8 [N,H,W,3] + <c>labels</c> int64 [N], exactly
/// N samples in index order), streaming (memory O(one row block)), written under a temporary name and renamed. Every
/// shard is checked against the sha256 the ledger recorded first; a bad one is reported (and put back to pending) rather
/// than merged.
/// </summary>
public static class RunMerger
{
    private const int RowsPerCopy = 64;

    /// <summary>
    /// Merges into <paramref name="output"/>. Returns null after resetting the shards that failed verification (they must
    /// be generated again); throws <see cref="InvalidOperationException"/> naming the shards that are not done.
    /// </summary>
    public static async Task<MergeResult?> MergeAsync(ILedger ledger, RunRecord run, string output, LedgerRetry retry, Action<string> log,
        IProgress<long>? samplesMerged = null, CancellationToken cancellation = default)
    {
        var shards = await retry.RunAsync(ct => ledger.GetShardsAsync(run.RunId, ct), cancellation).ConfigureAwait(false);
        var missing = shards.Where(s => s.State != ShardState.Done).Select(s => s.Index).ToArray();
        if (missing.Length > 0)
            throw new InvalidOperationException($"run {run.Name} ({run.RunId}) is not finished: shard(s) {Ranges(missing)} of {shards.Count} are not done");
        var reset = await RunPlanner.VerifyAsync(ledger, run, retry, log, cancellation).ConfigureAwait(false);
        if (reset.Count > 0) return null;

        var ordered = shards.OrderBy(s => s.Index).ToArray();
        int height, width;
        using (var first = NpzArchive.Open(ShardFiles.PathOf(run, ordered[0], ordered[0].Result!.File)))
        {
            var (_, _, h, w) = FeatureExtractor.Images(first);
            (height, width) = (h, w);
        }
        var labels = new long[run.NumSamples];
        try
        {
            WriteMerged(run, output, ordered, height, width, labels, samplesMerged, cancellation);
        }
        catch (IOException e) when (DiskFullException.Is(e))
        {
            throw new DiskFullException($"{output}: no space left on device while merging run {run.Name} ({e.Message}); the shards are kept: " +
                                        "free space there (or give merge another -o) and merge again", e);
        }
        string sha = ContentHashes.File(output);
        await retry.RunAsync(ct => ledger.AddEventAsync(new LedgerEvent(DateTimeOffset.UtcNow, LedgerEventKind.Merged, run.RunId, null, null,
            $"{output} sha256 {sha}"), ct), cancellation).ConfigureAwait(false);
        return new MergeResult(output, sha, run.NumSamples, height, ordered.Sum(s => s.Result!.Seconds), ordered.Sum(s => s.Result!.MultiplyAccumulates),
            ordered.Select(s => s.Result!.WorkerId).Distinct().Count());
    }

    private static void WriteMerged(RunRecord run, string output, ShardRecord[] ordered, int height, int width, long[] labels,
        IProgress<long>? samplesMerged, CancellationToken cancellation)
    {
        using (var writer = new NpzWriter(output))
        {
            writer.BeginArray("arr_0", DType.UInt8, run.NumSamples, height, width, 3);
            long done = 0;
            var buffer = new byte[(long)RowsPerCopy * height * width * 3];
            foreach (var shard in ordered)
            {
                cancellation.ThrowIfCancellationRequested();
                string path = ShardFiles.PathOf(run, shard, shard.Result!.File);
                using var npz = NpzArchive.Open(path);
                var (images, count, h, w) = FeatureExtractor.Images(npz);
                if (count != shard.Count || h != height || w != width || images.DType != DType.UInt8)
                    throw new TensorFileException(path, $"holds {count} {images.DType.NumpyName()} images of {h}x{w}; shard {shard.Index} needs {shard.Count} uint8 of {height}x{width}");
                if (shard.First != done) throw new InvalidOperationException($"shard {shard.Index} starts at {shard.First}, expected {done}");
                using (var rows = images.OpenRows())
                {
                    for (int read = 0; read < count;)
                    {
                        int n = rows.ReadRows(buffer, RowsPerCopy);
                        writer.Write<byte>(buffer.AsSpan(0, n * height * width * 3));
                        read += n;
                        samplesMerged?.Report(done + read);
                    }
                }
                var shardLabels = IntegerVectors.Read(npz["labels"], path, "array 'labels'");
                if (shardLabels.Length != count) throw new TensorFileException(path, $"array 'labels' has {shardLabels.Length} entries for {count} images");
                shardLabels.CopyTo(labels, done);
                done += count;
            }
            writer.EndArray();
            writer.WriteArray<long>("labels", DType.Int64, [run.NumSamples], labels);
            writer.Complete();
        }
    }

    /// <summary>
    /// Joins the shards' Inception features (all must have them) into one features file (pool, spatial, logits), in
    /// sample order. Returns false when some shard has none.
    /// </summary>
    public static bool MergeFeatures(RunRecord run, IReadOnlyList<ShardRecord> shards, string output)
    {
        var ordered = shards.OrderBy(s => s.Index).ToArray();
        if (ordered.Any(s => s.Result?.FeaturesFile == null)) return false;
        var parts = new[] { ("pool", FidInceptionV3.PoolFeatures), ("spatial", FidInceptionV3.SpatialFeatures), ("logits", FidInceptionV3.Classes) };
        using var writer = new NpzWriter(output);
        foreach (var (name, columns) in parts)
        {
            writer.BeginArray(name, DType.Float32, run.NumSamples, columns);
            foreach (var shard in ordered)
            {
                string path = ShardFiles.PathOf(run, shard, shard.Result!.FeaturesFile!);
                using var npz = NpzArchive.Open(path);
                var a = npz[name];
                if (a.DType != DType.Float32 || a.Shape.Count != 2 || a.Shape[0] != shard.Count || a.Shape[1] != columns)
                    throw new TensorFileException(path, $"array '{name}' is {a.DType.NumpyName()} [{string.Join(",", a.Shape)}], expected float32 [{shard.Count},{columns}]");
                writer.Write<float>(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(a.ReadAllBytes()));
            }
            writer.EndArray();
        }
        writer.Complete();
        return true;
    }

    private static string Ranges(int[] indices) =>
        indices.Length <= 8 ? string.Join(", ", indices) : string.Join(", ", indices.Take(8)) + $", … ({indices.Length} in all)";
}
