using System.Globalization;
using System.Runtime.CompilerServices;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Evaluation.Inception;
using DyDiT.Eval.Workers.Sampling;

namespace DyDiT.Eval.Cluster.Work;

/// <summary>
/// How a worker behaves. <see cref="RunIds"/>: only these runs (empty = any run in the ledger, oldest first).
/// <see cref="Lease"/>: how long a claim holds without a heartbeat (heartbeats every fifth of it).
/// <see cref="IdlePoll"/>: how often to look again when every remaining shard is leased to someone else.
/// <see cref="LedgerPatience"/>: how long ledger calls are retried before the worker gives up.
/// <see cref="Device"/>: the device name, for the ledger. <see cref="Numerics"/>: this worker's numerics identity
/// (<see cref="RunNumerics"/>; null = this machine's CPU's); a run planned with other numerics is refused.
/// </summary>
public sealed record WorkerOptions(
    IReadOnlyList<string> RunIds,
    TimeSpan Lease,
    TimeSpan IdlePoll,
    TimeSpan LedgerPatience,
    string Device = "cpu",
    int? MaxShards = null,
    string? Numerics = null);

/// <summary>
/// One worker: claims a shard, generates it (<see cref="ShardGenerator"/>) into <c>shard-a-b.npz</c> in the run's output
/// directory, optionally computes its Inception features right away, records the result (sha256, seconds, MACs) and
/// repeats until no run it serves has work left. While a shard is generated a heartbeat extends the lease; a worker
/// that is stopped (cancellation: SIGTERM, Ctrl-C, its parent gone) deletes its partial file and gives the shard back.
/// Every ledger call goes through <see cref="LedgerRetry"/>, so a ledger outage shorter than the patience only pauses it.
/// </summary>
public sealed class ShardWorker
{
    private readonly ILedger _ledger;
    private readonly WorkerOptions _options;
    private readonly IBackend _backend;
    private readonly Action<string> _log;
    private readonly LedgerRetry _retry;
    private readonly Dictionary<string, RunRecord> _runs = [];
    private string? _loadedRun;
    private ShardGenerator? _generator;
    private FidInceptionV3? _inception;
    private string? _inceptionPath;

    public ShardWorker(ILedger ledger, WorkerOptions options, IBackend backend, Action<string> log)
    {
        _ledger = ledger ?? throw new ArgumentNullException(nameof(ledger));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        _log = log ?? throw new ArgumentNullException(nameof(log));
        _retry = new LedgerRetry(options.LedgerPatience, m => _log($"{WorkerId}: {m}"), ledger.Description);
        WorkerId = string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}-{Environment.ProcessId}-{Random.Shared.Next(0x10000):x4}");
    }

    public string WorkerId { get; }

    /// <summary>Shards this worker completed.</summary>
    public int ShardsDone { get; private set; }

    /// <summary>
    /// Works until no claimable shard remains in the served runs and none is leased to anyone (then returns), or until
    /// <paramref name="cancellation"/> (then the current shard is given back and <see cref="OperationCanceledException"/>
    /// is thrown).
    /// </summary>
    public async Task RunAsync(CancellationToken cancellation)
    {
        await _retry.RunAsync(ct => _ledger.RegisterWorkerAsync(new WorkerInfo(WorkerId, Environment.MachineName, Environment.ProcessId, _options.Device), ct),
            cancellation).ConfigureAwait(false);
        await Event(LedgerEventKind.WorkerStarted, null, null, $"{Environment.MachineName} pid {Environment.ProcessId} {_options.Device}", cancellation).ConfigureAwait(false);
        try
        {
            while (_options.MaxShards is not int max || ShardsDone < max)
            {
                var lease = await ClaimAsync(cancellation).ConfigureAwait(false);
                if (lease == null)
                {
                    if (await AllDoneAsync(cancellation).ConfigureAwait(false)) break;
                    await Task.Delay(_options.IdlePoll, cancellation).ConfigureAwait(false);
                    continue;
                }
                await WorkOnAsync(lease, cancellation).ConfigureAwait(false);
                ShardsDone++;
            }
        }
        finally
        {
            _generator?.Dispose();
            _inception?.Dispose();
            try
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _ledger.WorkerStoppedAsync(WorkerId, quick.Token).ConfigureAwait(false);
                await _ledger.AddEventAsync(new LedgerEvent(DateTimeOffset.UtcNow, LedgerEventKind.WorkerStopped, null, null, WorkerId,
                    $"{ShardsDone} shard(s)"), quick.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _log($"{WorkerId}: could not record the stop ({e.GetType().Name}: {e.Message})"); // the ledger shows it as not seen since
            }
        }
    }

    private async Task<ShardLease?> ClaimAsync(CancellationToken cancellation)
    {
        if (_options.RunIds.Count == 0)
            return await _retry.RunAsync(ct => _ledger.ClaimAsync(WorkerId, null, _options.Lease, ct), cancellation).ConfigureAwait(false);
        foreach (var run in _options.RunIds)
        {
            var lease = await _retry.RunAsync(ct => _ledger.ClaimAsync(WorkerId, run, _options.Lease, ct), cancellation).ConfigureAwait(false);
            if (lease != null) return lease;
        }
        return null;
    }

    private async Task<bool> AllDoneAsync(CancellationToken cancellation)
    {
        IEnumerable<string> runs = _options.RunIds.Count > 0 ? _options.RunIds
            : (await _retry.RunAsync(ct => _ledger.ListRunsAsync(ct), cancellation).ConfigureAwait(false)).Select(r => r.RunId);
        foreach (var run in runs)
        {
            var shards = await _retry.RunAsync(ct => _ledger.GetShardsAsync(run, ct), cancellation).ConfigureAwait(false);
            if (shards.Any(s => s.State != ShardState.Done)) return false;
        }
        return true;
    }

    private async Task WorkOnAsync(ShardLease lease, CancellationToken cancellation)
    {
        var run = await RunAsync(lease.RunId, cancellation).ConfigureAwait(false);
        var spec = RunSpec.FromJson(run.SpecJson, $"run {run.RunId} in {_ledger.Description}");
        string numerics = _options.Numerics ?? RunNumerics.Cpu;
        if (spec.Numerics != numerics)
        {
            try
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _ledger.AbandonAsync(lease, $"worker numerics {numerics} differ from the run's {spec.Numerics}", quick.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _log($"{WorkerId}: could not give shard {lease.ShardIndex} back ({e.Message}); it returns to the pool when its lease expires");
            }
            throw new RunConflictException(
                $"run {run.Name} ({run.RunId}) was planned for {spec.Numerics} numerics but this worker computes with {numerics} " +
                $"(--device {_options.Device}); its shards would not match the others byte for byte. Start the worker with the run's device " +
                "kind and precision, on a machine of the same GPU architecture or CPU kernel family (OpenBLAS core, vector width), " +
                "or serve other runs with --run" +
                (spec.Numerics == RunNumerics.LegacyCpu ? $"; {RunNumerics.LegacyCpu} runs were planned by an older version whose CPU bits " +
                    "depended on the thread count: plan the run again in a new output directory" : ""));
        }
        string file = ShardFiles.SamplesName(lease.First, lease.Count);
        string path = Path.Combine(run.OutputDirectory, file);
        _log($"{WorkerId}: shard {lease.ShardIndex} [{lease.First}, {lease.First + lease.Count - 1}] of {run.Name} ({run.RunId})" +
             (lease.WasReleased ? ", re-leased after its lease expired" : "") + (lease.Attempt > 1 ? $", attempt {lease.Attempt}" : ""));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        double progress = 0;
        var lostLease = new StrongBox<bool>();
        var heartbeat = HeartbeatAsync(lease, () => (int)progress, lostLease, stop.Token);
        try
        {
            Directory.CreateDirectory(run.OutputDirectory);
            var generator = Generator(run, spec);
            var cost = await Task.Run(() => generator.Write(path, lease.First, lease.Count, new Progress(v => progress = v), stop.Token), stop.Token)
                .ConfigureAwait(false);
            string sha = ContentHashes.File(path);
            string? featuresFile = null, featuresSha = null;
            if (spec.Inception != null)
            {
                featuresFile = ShardFiles.FeaturesName(lease.First, lease.Count);
                string featuresPath = Path.Combine(run.OutputDirectory, featuresFile);
                await Task.Run(() => Features(spec, path, featuresPath, stop.Token), stop.Token).ConfigureAwait(false);
                featuresSha = ContentHashes.File(featuresPath);
            }
            var result = new ShardResult(file, sha, lease.Count, cost.Seconds, cost.MultiplyAccumulates, WorkerId, Environment.MachineName,
                featuresFile, featuresSha);
            bool accepted = await _retry.RunAsync(ct => _ledger.CompleteAsync(lease, result, ct), cancellation).ConfigureAwait(false);
            _log(accepted
                ? string.Create(CultureInfo.InvariantCulture, $"{WorkerId}: shard {lease.ShardIndex} done in {cost.Seconds:F1} s ({lease.Count / Math.Max(cost.Seconds, 1e-9):F2} samples/s), sha256 {sha[..12]}")
                : $"{WorkerId}: shard {lease.ShardIndex}: the ledger already holds a different sha256 for it (see its Conflict event)");
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            _log($"{WorkerId}: stopping; shard {lease.ShardIndex} given back");
            // Stopped after the file was renamed into place but before it was recorded: the shard goes back to pending,
            // so its file goes too (unless the lease went to another worker, whose file it may be by now).
            if (!lostLease.Value)
                foreach (var f in new[] { path, Path.Combine(run.OutputDirectory, ShardFiles.FeaturesName(lease.First, lease.Count)) })
                    try { File.Delete(f); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            await GiveBackAsync(lease, "worker stopped").ConfigureAwait(false);
            throw;
        }
        catch (IOException e) when (DiskFullException.Is(e))
        {
            // The partial file is gone (temp + rename); the shard goes back for when there is room again. Not retried here:
            // a full disk does not empty itself.
            await GiveBackAsync(lease, "no space left on device").ConfigureAwait(false);
            throw new DiskFullException(
                $"{path}: no space left on device while writing shard {lease.ShardIndex} of run {run.Name} ({e.Message}); " +
                $"free space in {run.OutputDirectory} (or give the run an output directory on a larger disk) and run again", e);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await heartbeat.ConfigureAwait(false);
        }
    }

    private async Task GiveBackAsync(ShardLease lease, string reason)
    {
        try
        {
            using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _ledger.AbandonAsync(lease, reason, quick.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log($"{WorkerId}: could not give shard {lease.ShardIndex} back ({e.Message}); it returns to the pool when its lease expires");
        }
    }

    private async Task HeartbeatAsync(ShardLease lease, Func<int> samplesDone, StrongBox<bool> lost, CancellationToken stop)
    {
        var every = _options.Lease / 5;
        bool warned = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, stop).ConfigureAwait(false);
                bool held = await _retry.RunAsync(ct => _ledger.HeartbeatAsync(lease, _options.Lease, samplesDone(), ct), stop).ConfigureAwait(false);
                if (!held) lost.Value = true;
                if (!held && !warned)
                {
                    // Someone else holds it now (our lease expired while the ledger was away): finishing is still right —
                    // the bytes are the same whoever makes them and completion is idempotent.
                    _log($"{WorkerId}: lost the lease on shard {lease.ShardIndex}; finishing it anyway");
                    warned = true;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (LedgerException e)
            {
                _log($"{WorkerId}: heartbeat failed: {e.Message}");
            }
        }
    }

    private async Task<RunRecord> RunAsync(string runId, CancellationToken cancellation)
    {
        if (_runs.TryGetValue(runId, out var known)) return known;
        var run = await _retry.RunAsync(ct => _ledger.GetRunAsync(runId, ct), cancellation).ConfigureAwait(false)
                  ?? throw new LedgerException($"run {runId} is not in {_ledger.Description}");
        _runs[runId] = run;
        return run;
    }

    private ShardGenerator Generator(RunRecord run, RunSpec spec)
    {
        if (_loadedRun == run.RunId && _generator != null) return _generator;
        _generator?.Dispose();
        _generator = null;
        _generator = ShardGenerator.Load(Settings(spec), _backend);
        _loadedRun = run.RunId;
        return _generator;
    }

    /// <summary>The generator settings a run spec describes.</summary>
    public static ShardSettings Settings(RunSpec spec) => new(
        spec.Model, spec.Checkpoint, spec.Vae, spec.Net, spec.ImageSize, spec.NumClasses, spec.Seed, spec.CfgScale, spec.Steps,
        spec.Sampler == "ddim" ? SamplerKind.Ddim : SamplerKind.Ddpm, spec.Eta, spec.Labels, spec.BatchSize);

    private void Features(RunSpec spec, string imagesPath, string featuresPath, CancellationToken cancellation)
    {
        if (_inceptionPath != spec.Inception) // runs in one pool may name different weights
        {
            _inception?.Dispose();
            _inception = null;
            _inception = FidInceptionV3.Load(spec.Inception!, _backend);
            _inceptionPath = spec.Inception;
        }
        var mode = spec.Preprocess == "pytorch-fid" ? PreprocessMode.PytorchFid : PreprocessMode.Adm;
        FeatureExtractor.Extract(imagesPath, _inception!, mode, FeatureExtractor.DefaultBatchSize, cancel: cancellation).Save(featuresPath);
    }

    private Task Event(LedgerEventKind kind, string? run, int? shard, string? detail, CancellationToken cancellation) =>
        _retry.RunAsync(ct => _ledger.AddEventAsync(new LedgerEvent(DateTimeOffset.UtcNow, kind, run, shard, WorkerId, detail), ct), cancellation);

    private sealed class Progress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
