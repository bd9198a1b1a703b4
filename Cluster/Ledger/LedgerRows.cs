using System.Data.Common;

namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// What both ledgers store the same way: the schema version, the text forms of states and event kinds, and the column
/// lists and row readers for the tables. Only the SQL dialect and the time type differ between SQLite and PostgreSQL, so
/// the readers take the time conversion as an argument.
/// </summary>
internal static class LedgerRows
{
    /// <summary>The schema this tool writes. Bump it (and migrate in both ledgers) whenever a table changes.</summary>
    public const int SchemaVersion = 1;

    public const string RunColumns = "run_id, name, spec_json, output_directory, num_samples, shard_size, created_at";

    public const string ShardColumns =
        "run_id, idx, first, count, state, worker_id, lease_expires, attempts, samples_done, " +
        "file, sha256, samples, seconds, macs, result_worker, host, features_file, features_sha256";

    public const string WorkerColumns = "worker_id, host, pid, device, state, started_at, last_seen";

    public const string EventColumns = "at, kind, run_id, shard_idx, worker_id, detail";

    /// <summary>Reads a timestamp column (never null) at an ordinal.</summary>
    public delegate DateTimeOffset TimeReader(DbDataReader reader, int ordinal);

    public static string StateName(ShardState state) => state switch
    {
        ShardState.Pending => "pending",
        ShardState.Leased => "leased",
        ShardState.Done => "done",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static ShardState ParseState(string text) => text switch
    {
        "pending" => ShardState.Pending,
        "leased" => ShardState.Leased,
        "done" => ShardState.Done,
        _ => throw new LedgerException($"the ledger holds a shard in state '{text}', which this tool does not know; is a newer dydit-eval writing to it?"),
    };

    public static LedgerEventKind ParseKind(string text) =>
        Enum.TryParse(text, ignoreCase: false, out LedgerEventKind kind) && Enum.IsDefined(kind)
            ? kind
            : throw new LedgerException($"the ledger holds an event of kind '{text}', which this tool does not know; is a newer dydit-eval writing to it?");

    /// <summary>The message for a schema newer than <see cref="SchemaVersion"/>; names both versions so users know to upgrade.</summary>
    public static string NewerSchemaMessage(string description, int found) =>
        $"{description} has schema version {found}, but this dydit-eval knows only up to version {SchemaVersion}; " +
        "use the newer dydit-eval that created it, or a fresh ledger";

    /// <summary>
    /// Reads <see cref="RunColumns"/>. The output directory must be an absolute path without <c>.</c> or <c>..</c>
    /// segments (what <c>run</c> stores): every shard file of the run is confined to it.
    /// </summary>
    public static RunRecord ReadRun(DbDataReader r, TimeReader time, string ledger)
    {
        var run = new RunRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetInt32(5), time(r, 6));
        string dir = run.OutputDirectory;
        if (!Path.IsPathFullyQualified(dir) || dir.IndexOf('\0') >= 0 ||
            dir.Split('/', '\\').Any(segment => segment is "." or ".."))
            throw new LedgerDataException(
                $"{ledger}: run {run.RunId} records the output directory '{dir}', which is not an absolute path without '.' or '..' " +
                "(run stores its resolved output directory); the ledger was altered or is corrupt. Correct or delete that row, " +
                "or plan the run in a fresh ledger");
        return run;
    }

    /// <summary>
    /// Reads <see cref="ShardColumns"/>; the result only when the shard is done. The file names a done shard records must
    /// be plain names in the run's output directory (<see cref="IsPlainFileName"/>): a row that points elsewhere (an
    /// altered or corrupt ledger) is refused here, before any caller reads, replaces or deletes what it names.
    /// </summary>
    public static ShardRecord ReadShard(DbDataReader r, TimeReader time, string ledger)
    {
        var state = ParseState(r.GetString(4));
        ShardResult? result = state == ShardState.Done
            ? new ShardResult(r.GetString(9), r.GetString(10), r.GetInt32(11), r.GetDouble(12), r.GetInt64(13), r.GetString(14), r.GetString(15),
                NullableString(r, 16), NullableString(r, 17))
            : null;
        var shard = new ShardRecord(r.GetString(0), r.GetInt32(1), r.GetInt64(2), r.GetInt32(3), state, NullableString(r, 5),
            r.IsDBNull(6) ? null : time(r, 6), r.GetInt32(7), r.GetInt32(8), result);
        if (result != null)
        {
            CheckStoredName(ledger, shard, "file", result.File);
            if (result.FeaturesFile != null) CheckStoredName(ledger, shard, "features_file", result.FeaturesFile);
        }
        return shard;
    }

    /// <summary>
    /// Whether <paramref name="name"/> names a file directly inside a run's output directory: not empty, not <c>.</c> or
    /// <c>..</c>, no directory separator, not rooted, no NUL, at most 255 characters.
    /// </summary>
    public static bool IsPlainFileName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 255 && name is not "." and not ".." && name.IndexOfAny(['/', '\\', '\0']) < 0
        && !Path.IsPathRooted(name);

    /// <summary>Refuses (<see cref="LedgerDataException"/>) a stored name that is not a plain file name.</summary>
    public static void CheckStoredName(string ledger, ShardRecord shard, string column, string name)
    {
        if (!IsPlainFileName(name))
            throw new LedgerDataException(
                $"{ledger}: shard {shard.Index} of run {shard.RunId} records {column} '{name}', which is not a file name inside the run's output " +
                "directory (no '..', no absolute path, no directory separator); the ledger was altered or is corrupt: nothing was read or deleted. " +
                "Correct or delete that row, or plan the run in a fresh ledger");
    }

    /// <summary>Refuses a result whose file names would leave the run's output directory, before it is stored.</summary>
    public static void Validate(ShardResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (!IsPlainFileName(result.File))
            throw new ArgumentException($"shard file '{result.File}' is not a plain file name in the run's output directory", nameof(result));
        if (result.FeaturesFile != null && !IsPlainFileName(result.FeaturesFile))
            throw new ArgumentException($"features file '{result.FeaturesFile}' is not a plain file name in the run's output directory", nameof(result));
    }

    /// <summary>Reads <see cref="WorkerColumns"/>.</summary>
    public static WorkerRecord ReadWorker(DbDataReader r, TimeReader time) =>
        new(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetString(3), r.GetString(4), time(r, 5), time(r, 6));

    /// <summary>Reads <see cref="EventColumns"/>.</summary>
    public static LedgerEvent ReadEvent(DbDataReader r, TimeReader time) =>
        new(time(r, 0), ParseKind(r.GetString(1)), NullableString(r, 2), r.IsDBNull(3) ? null : r.GetInt32(3), NullableString(r, 4),
            NullableString(r, 5));

    /// <summary>The detail of a <see cref="LedgerEventKind.Completed"/> event: where the result went.</summary>
    public static string CompletedDetail(ShardResult result) => $"{result.File} sha256={result.Sha256} samples={result.Samples}";

    /// <summary>The detail of a <see cref="LedgerEventKind.Conflict"/> event: both hashes and who offered the second.</summary>
    public static string ConflictDetail(string storedSha256, ShardResult offered) =>
        $"stored sha256={storedSha256}, offered sha256={offered.Sha256} ({offered.File}) by {offered.WorkerId}@{offered.Host}";

    public static bool SameSha256(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    /// <summary>Rejects a run that cannot be split into shards before anything is written.</summary>
    public static void Validate(RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentException.ThrowIfNullOrWhiteSpace(run.RunId);
        if (run.NumSamples <= 0) throw new ArgumentOutOfRangeException(nameof(run), run.NumSamples, "a run needs at least one sample");
        if (run.ShardSize <= 0) throw new ArgumentOutOfRangeException(nameof(run), run.ShardSize, "a shard needs at least one sample");
        _ = run.ShardCount; // checked: overflows for absurd sizes
    }

    public static void Validate(ShardLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentException.ThrowIfNullOrWhiteSpace(lease.RunId);
        ArgumentException.ThrowIfNullOrWhiteSpace(lease.WorkerId);
    }

    public static void ValidateLeaseTime(TimeSpan leaseFor)
    {
        if (leaseFor <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(leaseFor), leaseFor, "a lease must last a positive time");
    }

    private static string? NullableString(DbDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : r.GetString(ordinal);
}
