namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// The shared record of runs and their shards that workers on any number of hosts coordinate through: SQLite for one
/// host (<see cref="SqliteLedger"/>), PostgreSQL for a cluster (<see cref="PostgresLedger"/>). Every method is one short
/// transaction; a failure is an exception the caller may retry (<see cref="LedgerRetry"/>), never a half-applied change.
/// <para>Shard life: <c>pending</c> → (claim) <c>leased</c> → (complete) <c>done</c>. A lease has a deadline that
/// heartbeats extend; a claim may take a <c>leased</c> shard whose deadline has passed (a "re-lease", recorded as an
/// <see cref="LedgerEventKind.Released"/> event). Completing is idempotent and accepted from any worker while the shard is
/// not done (a sample's bytes do not depend on who makes it); a done shard can be put back to <c>pending</c> by
/// <see cref="ResetShardAsync"/> when its file fails verification.</para>
/// </summary>
public interface ILedger : IAsyncDisposable
{
    /// <summary>What to show users: the kind and location, never a password.</summary>
    string Description { get; }

    /// <summary>Creates the tables if missing; fails (<see cref="LedgerException"/>) on a schema from a newer tool.</summary>
    Task EnsureSchemaAsync(CancellationToken cancellation = default);

    /// <summary>
    /// Adds the run and its shards (numbered 0.., contiguous ranges of <see cref="RunRecord.ShardSize"/> samples) if the
    /// run id is new; otherwise leaves everything as it is. Returns the stored run.
    /// </summary>
    Task<RunRecord> RegisterRunAsync(RunRecord run, CancellationToken cancellation = default);

    Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellation = default);

    /// <summary>All runs, oldest first.</summary>
    Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken cancellation = default);

    /// <summary>Records a worker (insert or update its host, pid, device, last-seen time; state "running").</summary>
    Task RegisterWorkerAsync(WorkerInfo worker, CancellationToken cancellation = default);

    /// <summary>Marks a worker stopped (it exited on its own).</summary>
    Task WorkerStoppedAsync(string workerId, CancellationToken cancellation = default);

    Task<IReadOnlyList<WorkerRecord>> GetWorkersAsync(CancellationToken cancellation = default);

    /// <summary>
    /// Leases one shard to <paramref name="workerId"/> for <paramref name="leaseFor"/>: the lowest-numbered pending shard,
    /// or a leased one whose deadline has passed, of <paramref name="runId"/> (or of any run when null, oldest run first).
    /// Null when nothing is claimable now (all done, or all leased and alive). Atomic across processes and hosts
    /// (<c>FOR UPDATE SKIP LOCKED</c> / an immediate transaction).
    /// </summary>
    Task<ShardLease?> ClaimAsync(string workerId, string? runId, TimeSpan leaseFor, CancellationToken cancellation = default);

    /// <summary>
    /// Extends the lease to now + <paramref name="leaseFor"/> and records <paramref name="samplesDone"/> (progress within
    /// the shard) and the worker's last-seen time. False when the lease is no longer this worker's (expired and taken, or
    /// the shard is done): the worker may still finish and complete, which stays idempotent.
    /// </summary>
    Task<bool> HeartbeatAsync(ShardLease lease, TimeSpan leaseFor, int samplesDone, CancellationToken cancellation = default);

    /// <summary>
    /// Marks the shard done with its result. Idempotent: completing a done shard with the same sha256 is a no-op that
    /// returns true; a different sha256 returns false (and records a <see cref="LedgerEventKind.Conflict"/> event).
    /// </summary>
    Task<bool> CompleteAsync(ShardLease lease, ShardResult result, CancellationToken cancellation = default);

    /// <summary>Gives the shard back (pending, no owner) if this lease still holds it; records the reason.</summary>
    Task AbandonAsync(ShardLease lease, string reason, CancellationToken cancellation = default);

    /// <summary>Puts a shard back to pending (e.g. its file failed sha256 verification), clearing its result.</summary>
    Task ResetShardAsync(string runId, int shardIndex, string reason, CancellationToken cancellation = default);

    /// <summary>Updates a done shard's features file (features computed after the samples).</summary>
    Task SetShardFeaturesAsync(string runId, int shardIndex, string featuresFile, string featuresSha256, CancellationToken cancellation = default);

    /// <summary>The run's shards by index.</summary>
    Task<IReadOnlyList<ShardRecord>> GetShardsAsync(string runId, CancellationToken cancellation = default);

    /// <summary>Appends an event (worker and shard optional).</summary>
    Task AddEventAsync(LedgerEvent e, CancellationToken cancellation = default);

    /// <summary>The run's events in order (all runs' when <paramref name="runId"/> is null).</summary>
    Task<IReadOnlyList<LedgerEvent>> GetEventsAsync(string? runId, CancellationToken cancellation = default);
}

/// <summary>
/// A run as stored: <see cref="SpecJson"/> is the resolved run spec (absolute paths) that any worker rebuilds the
/// generator from; <see cref="OutputDirectory"/> is where shard files go (a shared filesystem in a cluster).
/// </summary>
public sealed record RunRecord(string RunId, string Name, string SpecJson, string OutputDirectory, long NumSamples, int ShardSize,
    DateTimeOffset CreatedAt)
{
    /// <summary>Number of shards: ceil(NumSamples / ShardSize).</summary>
    public int ShardCount => checked((int)((NumSamples + ShardSize - 1) / ShardSize));

    /// <summary>First sample and sample count of shard <paramref name="index"/>.</summary>
    public (long First, int Count) ShardRange(int index)
    {
        if ((uint)index >= (uint)ShardCount) throw new ArgumentOutOfRangeException(nameof(index), $"shard {index} of {ShardCount}");
        long first = (long)index * ShardSize;
        return (first, (int)Math.Min(ShardSize, NumSamples - first));
    }
}

public enum ShardState
{
    Pending,
    Leased,
    Done,
}

/// <summary>One shard as stored. Result fields are set when <see cref="State"/> is Done.</summary>
public sealed record ShardRecord(string RunId, int Index, long First, int Count, ShardState State, string? WorkerId,
    DateTimeOffset? LeaseExpires, int Attempts, int SamplesDone, ShardResult? Result);

/// <summary>A worker's hold on a shard. <see cref="Attempt"/> counts the claims of this shard (1 for the first).</summary>
public sealed record ShardLease(string RunId, int ShardIndex, long First, int Count, string WorkerId, int Attempt, bool WasReleased);

/// <summary>
/// What completing a shard records: the file name (relative to the run's output directory), its sha256 (hex), samples,
/// seconds spent generating, multiply-accumulates executed, worker and host; optionally the shard's features file.
/// </summary>
public sealed record ShardResult(string File, string Sha256, int Samples, double Seconds, long MultiplyAccumulates, string WorkerId,
    string Host, string? FeaturesFile = null, string? FeaturesSha256 = null);

/// <summary>A worker as it registers itself.</summary>
public sealed record WorkerInfo(string WorkerId, string Host, int ProcessId, string Device);

public sealed record WorkerRecord(string WorkerId, string Host, int ProcessId, string Device, string State, DateTimeOffset StartedAt,
    DateTimeOffset LastSeen);

public enum LedgerEventKind
{
    /// <summary>A shard was leased (detail: attempt).</summary>
    Claimed,

    /// <summary>A shard whose lease had expired was taken from its previous worker (detail: the previous worker).</summary>
    Released,

    Completed,

    /// <summary>A worker gave a shard back (detail: why).</summary>
    Abandoned,

    /// <summary>A done shard was put back to pending (detail: why, e.g. sha256 mismatch).</summary>
    Reset,

    /// <summary>A completion disagreed with the stored sha256.</summary>
    Conflict,

    WorkerStarted,
    WorkerStopped,

    /// <summary>The run's samples were merged (detail: file and sha256).</summary>
    Merged,
}

public sealed record LedgerEvent(DateTimeOffset At, LedgerEventKind Kind, string? RunId, int? ShardIndex, string? WorkerId, string? Detail);

/// <summary>A ledger that cannot be used: unreachable, a newer schema, a malformed URL (exit code 3 / 1 at the CLI).</summary>
public sealed class LedgerException : Exception
{
    public LedgerException(string message) : base(message) { }

    public LedgerException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// A ledger whose contents cannot be trusted: a row holds a value this tool would never write (a shard file name that
/// leaves the run's output directory). Bad input (exit code 1 at the CLI), never retried.
/// </summary>
public sealed class LedgerDataException(string message) : Exception(message);
