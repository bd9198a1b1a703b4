using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Engine.Formats;
using System.Text.Json;

namespace DyDiT.Eval.Cluster.Work;

/// <summary>Puts a run into the ledger (once) and checks what earlier attempts left in its output directory.</summary>
public static class RunPlanner
{
    /// <summary>
    /// The most shards one run may have: every shard is a ledger row, written when the run is planned and read by the live
    /// view every second, so 100,000 (10^8 samples in the default shards of 1000; FID-50K in shards of one is 50,000) is
    /// already seconds of planning and a busy ledger.
    /// </summary>
    public const int MaxShards = 100_000;

    /// <summary>
    /// What can be refused before anything is written (the ledger included): a spec that would plan more than
    /// <see cref="MaxShards"/> shards (<see cref="TensorFileException"/> naming the spec file and the limit), an output path
    /// that is a file, and an output directory whose <c>run.json</c> belongs to another run (or cannot be read): two runs
    /// in one directory would write the same shard names (<see cref="RunConflictException"/>).
    /// </summary>
    public static void CheckOutput(RunSpec spec, string runId)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string source = spec.SourcePath ?? spec.Name;
        long shards = (spec.NumSamples + spec.ShardSize - 1) / spec.ShardSize;
        if (shards > MaxShards)
            throw new TensorFileException(source,
                $"num_samples {spec.NumSamples} in shards of shard_size {spec.ShardSize} make {shards} shards; a run may have at most {MaxShards} " +
                "(one ledger row each): raise shard_size or split the run");
        if (File.Exists(spec.Output))
            throw new RunConflictException($"{source}: output {spec.Output} is a file; 'output' must name a directory (new, or one this run wrote)");
        string runFile = Path.Combine(spec.Output, ShardFiles.RunFile);
        if (!File.Exists(runFile)) return;
        string? there;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(runFile));
            there = doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("run_id", out var id) && id.ValueKind == JsonValueKind.String
                ? id.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new RunConflictException($"{source}: output {spec.Output} holds {runFile}, which is not valid JSON ({e.Message}); " +
                                           "it is not a run directory this tool wrote: use another output directory");
        }
        if (there == null)
            throw new RunConflictException($"{source}: output {spec.Output} holds {runFile} without a string 'run_id'; " +
                                           "it is not a run directory this tool wrote: use another output directory");
        if (there != runId)
            throw new RunConflictException(
                $"{source}: output directory {spec.Output} already holds run {there} ({runFile}); this spec is run {runId} (other settings, " +
                "weights or numerics), and two runs in one directory would overwrite each other's shards: use another output directory, " +
                "or delete that one to start over");
    }

    /// <summary>
    /// Registers the run the spec describes (its shards all pending) unless the ledger already has it — then the stored
    /// run is returned and its finished shards are kept. Writes <c>run.json</c> (the resolved spec and the id) into the
    /// output directory. A different run already in the ledger with the same output directory is refused
    /// (<see cref="RunConflictException"/>) before anything is written.
    /// </summary>
    public static async Task<RunRecord> PlanAsync(ILedger ledger, RunSpec spec, LedgerRetry retry, CancellationToken cancellation)
    {
        string runId = spec.ComputeRunId();
        CheckOutput(spec, runId);
        // Another run (other settings, weights or numerics: another id) would write shard files under the same names.
        var runs = await retry.RunAsync(ct => ledger.ListRunsAsync(ct), cancellation).ConfigureAwait(false);
        foreach (var other in runs)
        {
            if (other.RunId == runId || !SameDirectory(other.OutputDirectory, spec.Output)) continue;
            var otherSpec = RunSpec.FromJson(other.SpecJson, $"run {other.RunId} in {ledger.Description}");
            if (otherSpec.Numerics != spec.Numerics)
                throw new RunConflictException(
                    $"{spec.SourcePath ?? spec.Name}: output {spec.Output} already holds run {other.RunId}, generated with {otherSpec.Numerics} numerics; " +
                    $"this run computes with {spec.Numerics}, and shards of different numerics are never merged: use another output directory, " +
                    $"or the devices and precision that run was planned with");
            throw new RunConflictException(
                $"{spec.SourcePath ?? spec.Name}: output directory {spec.Output} already holds run {other.RunId} ({other.Name}) in {ledger.Description}; " +
                $"this spec is run {runId} (other settings or weights), and two runs in one directory would overwrite each other's shards: " +
                "use another output directory");
        }
        cancellation.ThrowIfCancellationRequested();
        Directory.CreateDirectory(spec.Output);
        var record = new RunRecord(runId, spec.Name, spec.ToJson(), spec.Output, spec.NumSamples, spec.ShardSize, DateTimeOffset.UtcNow);
        var stored = await retry.RunAsync(ct => ledger.RegisterRunAsync(record, ct), cancellation).ConfigureAwait(false);
        if (stored.OutputDirectory != record.OutputDirectory)
            throw new RunConflictException(
                $"{spec.SourcePath ?? spec.Name}: the ledger {ledger.Description} already holds this run ({runId}: same model, weights and " +
                $"settings) with output {stored.OutputDirectory}; point 'output' there to resume it, or use another ledger for a second copy");
        var runFile = Path.Combine(spec.Output, ShardFiles.RunFile);
        var text = $"{{\n  \"run_id\": \"{runId}\",\n  \"ledger\": {JsonSerializer.Serialize(ledger.Description)},\n  \"spec\": {stored.SpecJson.Replace("\n", "\n  ")}\n}}\n";
        WriteAtomically(runFile, text);
        return stored;
    }

    /// <summary>Writes <paramref name="text"/> to a temp name next to <paramref name="path"/> and renames it; the temp is removed on failure.</summary>
    internal static void WriteAtomically(string path, string text)
    {
        var tmp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.tmp-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllText(tmp, text);
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            if (DiskFullException.Is(e)) throw new DiskFullException($"{path}: no space left on device ({e.Message}); free space there and run again", e);
            throw;
        }
    }

    private static bool SameDirectory(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)), StringComparison.Ordinal);

    /// <summary>
    /// Checks every done shard's files against the sha256 the ledger holds; a missing or altered file puts its shard back
    /// to pending (and the bad file is deleted) so workers make it again. Returns the shards reset.
    /// </summary>
    public static async Task<IReadOnlyList<int>> VerifyAsync(ILedger ledger, RunRecord run, LedgerRetry retry, Action<string> log,
        CancellationToken cancellation)
    {
        var shards = await retry.RunAsync(ct => ledger.GetShardsAsync(run.RunId, ct), cancellation).ConfigureAwait(false);
        var reset = new List<int>();
        foreach (var shard in shards.Where(s => s.State == ShardState.Done))
        {
            cancellation.ThrowIfCancellationRequested();
            if (ShardFiles.Verify(run, shard, out var problem)) continue;
            log($"shard {shard.Index} of {run.Name}: {problem}; it will be generated again");
            foreach (var f in new[] { shard.Result?.File, shard.Result?.FeaturesFile })
                if (f != null) File.Delete(ShardFiles.PathOf(run, shard, f));
            await retry.RunAsync(ct => ledger.ResetShardAsync(run.RunId, shard.Index, problem, ct), cancellation).ConfigureAwait(false);
            reset.Add(shard.Index);
        }
        return reset;
    }
}

/// <summary>A run spec that collides with a different run already in the ledger.</summary>
public sealed class RunConflictException(string message) : Exception(message);
