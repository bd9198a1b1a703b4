using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;

namespace DyDiT.Eval.Cluster.Work;

/// <summary>Puts a run into the ledger (once) and checks what earlier attempts left in its output directory.</summary>
public static class RunPlanner
{
    /// <summary>
    /// Registers the run the spec describes (its shards all pending) unless the ledger already has it — then the stored
    /// run is returned and its finished shards are kept. Writes <c>run.json</c> (the resolved spec and the id) into the
    /// output directory.
    /// </summary>
    public static async Task<RunRecord> PlanAsync(ILedger ledger, RunSpec spec, LedgerRetry retry, CancellationToken cancellation)
    {
        string runId = spec.ComputeRunId();
        // The same settings under other numerics are another run (another id) whose shard files would land on this one's.
        var runs = await retry.RunAsync(ct => ledger.ListRunsAsync(ct), cancellation).ConfigureAwait(false);
        foreach (var other in runs)
        {
            if (other.RunId == runId || Path.GetFullPath(other.OutputDirectory) != Path.GetFullPath(spec.Output)) continue;
            var otherSpec = RunSpec.FromJson(other.SpecJson, $"run {other.RunId} in {ledger.Description}");
            if (otherSpec.Numerics != spec.Numerics)
                throw new RunConflictException(
                    $"{spec.SourcePath ?? spec.Name}: output {spec.Output} already holds run {other.RunId}, generated with {otherSpec.Numerics} numerics; " +
                    $"this run computes with {spec.Numerics}, and shards of different numerics are never merged: use another output directory, " +
                    $"or the devices and precision that run was planned with");
        }
        Directory.CreateDirectory(spec.Output);
        var record = new RunRecord(runId, spec.Name, spec.ToJson(), spec.Output, spec.NumSamples, spec.ShardSize, DateTimeOffset.UtcNow);
        var stored = await retry.RunAsync(ct => ledger.RegisterRunAsync(record, ct), cancellation).ConfigureAwait(false);
        if (stored.OutputDirectory != record.OutputDirectory)
            throw new RunConflictException(
                $"{spec.SourcePath ?? spec.Name}: the ledger {ledger.Description} already holds this run ({runId}: same model, weights and " +
                $"settings) with output {stored.OutputDirectory}; point 'output' there to resume it, or use another ledger for a second copy");
        var runFile = Path.Combine(spec.Output, ShardFiles.RunFile);
        var text = $"{{\n  \"run_id\": \"{runId}\",\n  \"ledger\": {System.Text.Json.JsonSerializer.Serialize(ledger.Description)},\n  \"spec\": {stored.SpecJson.Replace("\n", "\n  ")}\n}}\n";
        var tmp = runFile + $".tmp-{Guid.NewGuid():N}";
        await File.WriteAllTextAsync(tmp, text, cancellation).ConfigureAwait(false);
        File.Move(tmp, runFile, overwrite: true);
        return stored;
    }

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
                if (f != null) File.Delete(Path.Combine(run.OutputDirectory, f));
            await retry.RunAsync(ct => ledger.ResetShardAsync(run.RunId, shard.Index, problem, ct), cancellation).ConfigureAwait(false);
            reset.Add(shard.Index);
        }
        return reset;
    }
}

/// <summary>A run spec that collides with a different run already in the ledger.</summary>
public sealed class RunConflictException(string message) : Exception(message);
