using System.Globalization;
using Microsoft.Data.Sqlite;

namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// The ledger in one SQLite file, for workers on one host: several processes may open the same file at once.
/// <para>Why it is safe across processes: the file is in WAL mode (readers never block the writer), every change is one
/// <c>BEGIN IMMEDIATE</c> transaction (it takes the write lock up front, so two claimers can never both read the same
/// pending shard and then both write it; a deferred transaction could, or would fail with SQLITE_BUSY_SNAPSHOT), and
/// <c>busy_timeout</c> makes a process wait up to 10 s for the lock instead of failing at once. synchronous=FULL keeps
/// a recorded completion across a power cut, which matters more than the few writes per shard cost.</para>
/// <para>Time is this host's UTC clock (all writers share it). Timestamps are stored as fixed-width ISO-8601 text
/// (<c>2025-01-31T12:00:00.000000Z</c>, microseconds like PostgreSQL), so text order is time order and the file stays
/// readable with the <c>sqlite3</c> shell.</para>
/// </summary>
public sealed class SqliteLedger : ILedger
{
    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'";
    private const int BusyTimeoutMilliseconds = 10_000;

    /// <summary>SQLITE_BUSY and SQLITE_LOCKED: another process holds the lock longer than busy_timeout; worth a retry.</summary>
    private static readonly int[] TransientErrors = [5, 6];

    private static readonly string[] SchemaStatements =
    [
        """
        CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            output_directory TEXT NOT NULL,
            num_samples INTEGER NOT NULL,
            shard_size INTEGER NOT NULL,
            created_at TEXT NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS shards (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            idx INTEGER NOT NULL,
            first INTEGER NOT NULL,
            count INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done')),
            worker_id TEXT,
            lease_expires TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            samples_done INTEGER NOT NULL DEFAULT 0,
            file TEXT,
            sha256 TEXT,
            samples INTEGER,
            seconds REAL,
            macs INTEGER,
            result_worker TEXT,
            host TEXT,
            features_file TEXT,
            features_sha256 TEXT,
            completed_at TEXT,
            PRIMARY KEY (run_id, idx))
        """,
        "CREATE INDEX IF NOT EXISTS shards_by_state ON shards (state, run_id, idx)",
        """
        CREATE TABLE IF NOT EXISTS workers (
            worker_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            device TEXT NOT NULL,
            state TEXT NOT NULL,
            started_at TEXT NOT NULL,
            last_seen TEXT NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            run_id TEXT,
            shard_idx INTEGER,
            worker_id TEXT,
            detail TEXT)
        """,
        "CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id)",
    ];

    private readonly string _connectionString;

    /// <summary>Uses (and on first use creates) the SQLite file at <paramref name="path"/>, creating its directory.</summary>
    public SqliteLedger(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        string? directory = System.IO.Path.GetDirectoryName(Path);
        try
        {
            if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LedgerException($"cannot create the folder for the SQLite ledger {Path}: {e.Message}", e);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
    }

    /// <summary>The database file (absolute).</summary>
    public string Path { get; }

    public string Description => "sqlite:" + Path;

    public Task EnsureSchemaAsync(CancellationToken cancellation = default) => RunAsync(connection =>
    {
        try
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            Execute(connection, transaction, "CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
            object? found = Scalar(connection, transaction, "SELECT version FROM schema_version WHERE id = 1");
            if (found is long version && version > LedgerRows.SchemaVersion)
                throw new LedgerException(LedgerRows.NewerSchemaMessage(Description, checked((int)version)));
            if (found is long current && current == LedgerRows.SchemaVersion)
            {
                transaction.Commit();
                return;
            }

            foreach (string statement in SchemaStatements) Execute(connection, transaction, statement);
            Execute(connection, transaction, "INSERT INTO schema_version (id, version) VALUES (1, $v) ON CONFLICT (id) DO NOTHING",
                ("$v", LedgerRows.SchemaVersion));
            transaction.Commit();
        }
        catch (SqliteException e) when (!TransientErrors.Contains(e.SqliteErrorCode))
        {
            throw new LedgerException($"cannot use {Description} as a ledger: {e.Message}", e);
        }
    }, cancellation, openWrapsErrors: true);

    public Task<RunRecord> RegisterRunAsync(RunRecord run, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(run);
        return RunAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            int added = Execute(connection, transaction,
                "INSERT INTO runs (run_id, name, spec_json, output_directory, num_samples, shard_size, created_at) " +
                "VALUES ($id, $name, $spec, $out, $n, $size, $created) ON CONFLICT (run_id) DO NOTHING",
                ("$id", run.RunId), ("$name", run.Name), ("$spec", run.SpecJson), ("$out", run.OutputDirectory), ("$n", run.NumSamples),
                ("$size", run.ShardSize), ("$created", Format(run.CreatedAt)));
            if (added == 1)
            {
                using var insert = Command(connection, transaction,
                    "INSERT INTO shards (run_id, idx, first, count) VALUES ($run, $idx, $first, $count)",
                    ("$run", run.RunId), ("$idx", 0), ("$first", 0L), ("$count", 0));
                insert.Prepare();
                for (int index = 0; index < run.ShardCount; index++)
                {
                    // A stop while a big run is planned rolls the whole registration back: nothing half-planned stays.
                    if ((index & 4095) == 0) cancellation.ThrowIfCancellationRequested();
                    var (first, count) = run.ShardRange(index);
                    insert.Parameters["$idx"].Value = index;
                    insert.Parameters["$first"].Value = first;
                    insert.Parameters["$count"].Value = count;
                    insert.ExecuteNonQuery();
                }
            }
            var stored = ReadRuns(connection, transaction, "WHERE run_id = $id", ("$id", run.RunId)).Single();
            transaction.Commit();
            return stored;
        }, cancellation);
    }

    public Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        return RunAsync<RunRecord?>(connection => ReadRuns(connection, null, "WHERE run_id = $id", ("$id", runId)).SingleOrDefault(), cancellation);
    }

    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken cancellation = default) =>
        RunAsync<IReadOnlyList<RunRecord>>(connection => ReadRuns(connection, null, ""), cancellation);

    public Task RegisterWorkerAsync(WorkerInfo worker, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentException.ThrowIfNullOrWhiteSpace(worker.WorkerId);
        return RunAsync(connection =>
        {
            string now = Format(Now());
            Execute(connection, null,
                "INSERT INTO workers (worker_id, host, pid, device, state, started_at, last_seen) " +
                "VALUES ($id, $host, $pid, $device, 'running', $now, $now) " +
                "ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, device = excluded.device, " +
                "state = 'running', last_seen = excluded.last_seen",
                ("$id", worker.WorkerId), ("$host", worker.Host), ("$pid", worker.ProcessId), ("$device", worker.Device), ("$now", now));
        }, cancellation);
    }

    public Task WorkerStoppedAsync(string workerId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(workerId);
        return RunAsync(connection => Execute(connection, null,
            "UPDATE workers SET state = 'stopped', last_seen = $now WHERE worker_id = $id", ("$id", workerId), ("$now", Format(Now()))),
            cancellation);
    }

    public Task<IReadOnlyList<WorkerRecord>> GetWorkersAsync(CancellationToken cancellation = default) =>
        RunAsync<IReadOnlyList<WorkerRecord>>(connection =>
        {
            using var command = Command(connection, null, $"SELECT {LedgerRows.WorkerColumns} FROM workers ORDER BY started_at, worker_id");
            return ReadAll(command, r => LedgerRows.ReadWorker(r, ReadTime));
        }, cancellation);

    public Task<ShardLease?> ClaimAsync(string workerId, string? runId, TimeSpan leaseFor, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(workerId);
        LedgerRows.ValidateLeaseTime(leaseFor);
        return RunAsync<ShardLease?>(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var now = Now();
            string nowText = Format(now);
            using var select = Command(connection, transaction,
                "SELECT s.run_id, s.idx, s.first, s.count, s.state, s.worker_id, s.attempts " +
                "FROM shards s JOIN runs r ON r.run_id = s.run_id " +
                "WHERE (s.state = 'pending' OR (s.state = 'leased' AND s.lease_expires < $now)) AND ($run IS NULL OR s.run_id = $run) " +
                "ORDER BY r.created_at, s.run_id, s.idx LIMIT 1",
                ("$now", nowText), ("$run", runId));
            string shardRun, previousState;
            string? previousWorker;
            int index, count, attempts;
            long first;
            using (var reader = select.ExecuteReader())
            {
                if (!reader.Read()) return null;
                (shardRun, index, first, count) = (reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt32(3));
                (previousState, previousWorker, attempts) = (reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetInt32(6));
            }

            int attempt = attempts + 1;
            Execute(connection, transaction,
                "UPDATE shards SET state = 'leased', worker_id = $worker, lease_expires = $expires, attempts = $attempt, samples_done = 0 " +
                "WHERE run_id = $run AND idx = $idx",
                ("$worker", workerId), ("$expires", Format(now + leaseFor)), ("$attempt", attempt), ("$run", shardRun), ("$idx", index));
            bool released = previousState == LedgerRows.StateName(ShardState.Leased);
            if (released)
                InsertEvent(connection, transaction, new LedgerEvent(now, LedgerEventKind.Released, shardRun, index, workerId, previousWorker));
            InsertEvent(connection, transaction,
                new LedgerEvent(now, LedgerEventKind.Claimed, shardRun, index, workerId, "attempt " + attempt.ToString(CultureInfo.InvariantCulture)));
            transaction.Commit();
            return new ShardLease(shardRun, index, first, count, workerId, attempt, released);
        }, cancellation);
    }

    public Task<bool> HeartbeatAsync(ShardLease lease, TimeSpan leaseFor, int samplesDone, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(lease);
        LedgerRows.ValidateLeaseTime(leaseFor);
        return RunAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var now = Now();
            int held = Execute(connection, transaction,
                "UPDATE shards SET lease_expires = $expires, samples_done = $done " +
                "WHERE run_id = $run AND idx = $idx AND state = 'leased' AND worker_id = $worker AND attempts = $attempt",
                ("$expires", Format(now + leaseFor)), ("$done", samplesDone), ("$run", lease.RunId), ("$idx", lease.ShardIndex),
                ("$worker", lease.WorkerId), ("$attempt", lease.Attempt));
            Execute(connection, transaction, "UPDATE workers SET last_seen = $now WHERE worker_id = $worker",
                ("$now", Format(now)), ("$worker", lease.WorkerId));
            transaction.Commit();
            return held == 1;
        }, cancellation);
    }

    public Task<bool> CompleteAsync(ShardLease lease, ShardResult result, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(lease);
        LedgerRows.Validate(result);
        return RunAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var now = Now();
            string state, storedSha256;
            using (var select = Command(connection, transaction, "SELECT state, sha256 FROM shards WHERE run_id = $run AND idx = $idx",
                       ("$run", lease.RunId), ("$idx", lease.ShardIndex)))
            using (var reader = select.ExecuteReader())
            {
                if (!reader.Read()) throw NoShard(lease.RunId, lease.ShardIndex);
                (state, storedSha256) = (reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1));
            }

            bool accepted;
            if (state == LedgerRows.StateName(ShardState.Done))
            {
                accepted = LedgerRows.SameSha256(storedSha256, result.Sha256);
                if (!accepted)
                    InsertEvent(connection, transaction, new LedgerEvent(now, LedgerEventKind.Conflict, lease.RunId, lease.ShardIndex, lease.WorkerId,
                        LedgerRows.ConflictDetail(storedSha256, result)));
            }
            else
            {
                Execute(connection, transaction,
                    "UPDATE shards SET state = 'done', worker_id = $worker, lease_expires = NULL, samples_done = $samples, file = $file, " +
                    "sha256 = $sha, samples = $samples, seconds = $seconds, macs = $macs, result_worker = $resultWorker, host = $host, " +
                    "features_file = $featuresFile, features_sha256 = $featuresSha, completed_at = $now WHERE run_id = $run AND idx = $idx",
                    ("$worker", lease.WorkerId), ("$samples", result.Samples), ("$file", result.File), ("$sha", result.Sha256),
                    ("$seconds", result.Seconds), ("$macs", result.MultiplyAccumulates), ("$resultWorker", result.WorkerId), ("$host", result.Host),
                    ("$featuresFile", result.FeaturesFile), ("$featuresSha", result.FeaturesSha256), ("$now", Format(now)),
                    ("$run", lease.RunId), ("$idx", lease.ShardIndex));
                InsertEvent(connection, transaction, new LedgerEvent(now, LedgerEventKind.Completed, lease.RunId, lease.ShardIndex, lease.WorkerId,
                    LedgerRows.CompletedDetail(result)));
                accepted = true;
            }

            transaction.Commit();
            return accepted;
        }, cancellation);
    }

    public Task AbandonAsync(ShardLease lease, string reason, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(lease);
        return RunAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            int given = Execute(connection, transaction,
                "UPDATE shards SET state = 'pending', worker_id = NULL, lease_expires = NULL, samples_done = 0 " +
                "WHERE run_id = $run AND idx = $idx AND state = 'leased' AND worker_id = $worker AND attempts = $attempt",
                ("$run", lease.RunId), ("$idx", lease.ShardIndex), ("$worker", lease.WorkerId), ("$attempt", lease.Attempt));
            if (given == 1)
                InsertEvent(connection, transaction, new LedgerEvent(Now(), LedgerEventKind.Abandoned, lease.RunId, lease.ShardIndex, lease.WorkerId, reason));
            transaction.Commit();
        }, cancellation);
    }

    public Task ResetShardAsync(string runId, int shardIndex, string reason, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        return RunAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            int reset = Execute(connection, transaction,
                "UPDATE shards SET state = 'pending', worker_id = NULL, lease_expires = NULL, samples_done = 0, file = NULL, sha256 = NULL, " +
                "samples = NULL, seconds = NULL, macs = NULL, result_worker = NULL, host = NULL, features_file = NULL, features_sha256 = NULL, " +
                "completed_at = NULL WHERE run_id = $run AND idx = $idx",
                ("$run", runId), ("$idx", shardIndex));
            if (reset == 0) throw NoShard(runId, shardIndex);
            InsertEvent(connection, transaction, new LedgerEvent(Now(), LedgerEventKind.Reset, runId, shardIndex, null, reason));
            transaction.Commit();
        }, cancellation);
    }

    public Task SetShardFeaturesAsync(string runId, int shardIndex, string featuresFile, string featuresSha256, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        ArgumentException.ThrowIfNullOrWhiteSpace(featuresFile);
        ArgumentException.ThrowIfNullOrWhiteSpace(featuresSha256);
        if (!LedgerRows.IsPlainFileName(featuresFile))
            throw new ArgumentException($"features file '{featuresFile}' is not a plain file name in the run's output directory", nameof(featuresFile));
        return RunAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            int set = Execute(connection, transaction,
                "UPDATE shards SET features_file = $file, features_sha256 = $sha WHERE run_id = $run AND idx = $idx AND state = 'done'",
                ("$file", featuresFile), ("$sha", featuresSha256), ("$run", runId), ("$idx", shardIndex));
            if (set == 0) throw NotDone(runId, shardIndex);
            transaction.Commit();
        }, cancellation);
    }

    public Task<IReadOnlyList<ShardRecord>> GetShardsAsync(string runId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        return RunAsync<IReadOnlyList<ShardRecord>>(connection =>
        {
            using var command = Command(connection, null, $"SELECT {LedgerRows.ShardColumns} FROM shards WHERE run_id = $run ORDER BY idx", ("$run", runId));
            return ReadAll(command, r => LedgerRows.ReadShard(r, ReadTime, Description));
        }, cancellation);
    }

    /// <summary>Appends <paramref name="e"/>; an <see cref="LedgerEvent.At"/> of <c>default</c> means "now" by this host's clock.</summary>
    public Task AddEventAsync(LedgerEvent e, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        return RunAsync(connection => InsertEvent(connection, null, e.At == default ? e with { At = Now() } : e), cancellation);
    }

    public Task<IReadOnlyList<LedgerEvent>> GetEventsAsync(string? runId, CancellationToken cancellation = default) =>
        RunAsync<IReadOnlyList<LedgerEvent>>(connection =>
        {
            using var command = Command(connection, null,
                $"SELECT {LedgerRows.EventColumns} FROM events WHERE $run IS NULL OR run_id = $run ORDER BY id", ("$run", runId));
            return ReadAll(command, r => LedgerRows.ReadEvent(r, ReadTime));
        }, cancellation);

    /// <summary>Closes the pooled connections to the file, so it can be moved or deleted once every ledger on it is disposed.</summary>
    public ValueTask DisposeAsync()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }

    public override string ToString() => Description;

    // ---- plumbing ----

    /// <summary>
    /// Runs <paramref name="body"/> on a fresh (pooled) connection on the thread pool: Microsoft.Data.Sqlite is synchronous
    /// underneath, and a wait for another process's write lock (up to busy_timeout) must not block the caller's thread.
    /// </summary>
    private Task<T> RunAsync<T>(Func<SqliteConnection, T> body, CancellationToken cancellation, bool openWrapsErrors = false) =>
        Task.Run(() =>
        {
            using var connection = Open(openWrapsErrors);
            return body(connection);
        }, cancellation);

    private Task RunAsync(Action<SqliteConnection> body, CancellationToken cancellation, bool openWrapsErrors = false) =>
        RunAsync(connection =>
        {
            body(connection);
            return true;
        }, cancellation, openWrapsErrors);

    private SqliteConnection Open(bool wrapErrors)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            // busy_timeout first, so switching to WAL (which needs a moment of exclusive access) waits for other processes.
            Execute(connection, null, $"PRAGMA busy_timeout = {BusyTimeoutMilliseconds}");
            using (var wal = Command(connection, null, "PRAGMA journal_mode = WAL"))
            {
                string mode = Convert.ToString(wal.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "";
                if (!mode.Equals("wal", StringComparison.OrdinalIgnoreCase))
                    throw new LedgerException($"{Description} cannot use write-ahead logging (journal_mode is '{mode}'); " +
                        "several workers need it: put the ledger on a local disk, not a network filesystem");
            }

            Execute(connection, null, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
            return connection;
        }
        catch (SqliteException e) when (wrapErrors && !TransientErrors.Contains(e.SqliteErrorCode))
        {
            connection.Dispose();
            throw new LedgerException($"cannot open {Description} as a ledger: {e.Message}", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private static int Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteScalar();
    }

    private static List<T> ReadAll<T>(SqliteCommand command, Func<SqliteDataReader, T> read)
    {
        var rows = new List<T>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) rows.Add(read(reader));
        return rows;
    }

    private List<RunRecord> ReadRuns(SqliteConnection connection, SqliteTransaction? transaction, string where, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, $"SELECT {LedgerRows.RunColumns} FROM runs {where} ORDER BY created_at, run_id", parameters);
        return ReadAll(command, r => LedgerRows.ReadRun(r, ReadTime, Description));
    }

    private static void InsertEvent(SqliteConnection connection, SqliteTransaction? transaction, LedgerEvent e) =>
        Execute(connection, transaction,
            "INSERT INTO events (at, kind, run_id, shard_idx, worker_id, detail) VALUES ($at, $kind, $run, $shard, $worker, $detail)",
            ("$at", Format(e.At)), ("$kind", e.Kind.ToString()), ("$run", e.RunId), ("$shard", e.ShardIndex), ("$worker", e.WorkerId), ("$detail", e.Detail));

    /// <summary>This host's clock, truncated to microseconds like every stored time (so a returned time equals a re-read one).</summary>
    private static DateTimeOffset Now() => Truncate(DateTimeOffset.UtcNow);

    private static DateTimeOffset Truncate(DateTimeOffset time) => new(time.UtcTicks - time.UtcTicks % 10, TimeSpan.Zero);

    private static string Format(DateTimeOffset time) => Truncate(time).ToString(TimeFormat, CultureInfo.InvariantCulture);

    private static DateTimeOffset ReadTime(System.Data.Common.DbDataReader reader, int ordinal) =>
        DateTimeOffset.ParseExact(reader.GetString(ordinal), TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private LedgerException NoShard(string runId, int index) =>
        new($"{Description} has no shard {index} of run '{runId}'; was the run registered in a different ledger?");

    private LedgerException NotDone(string runId, int index) =>
        new($"shard {index} of run '{runId}' in {Description} is missing or not done; features can only be attached to a completed shard");
}
