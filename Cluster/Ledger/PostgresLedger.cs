using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// The ledger in a PostgreSQL database, for workers on many hosts.
/// <para>Why it is safe across hosts: a claim locks the shard it picks with <c>FOR UPDATE SKIP LOCKED</c>, so concurrent
/// claimers never wait on each other and never take the same shard; every other change is one short transaction that
/// checks the lease (worker and attempt) in its WHERE clause. Times come from the server's <c>now()</c>, not from the
/// workers, so lease deadlines mean the same on hosts whose clocks disagree.</para>
/// <para>Connection failures surface as Npgsql exceptions (<see cref="NpgsqlException"/>) that callers retry, except in
/// <see cref="EnsureSchemaAsync"/>, where they become a <see cref="LedgerException"/> naming the (password-free) location:
/// a ledger that cannot be reached at start is a configuration error, not a blip.</para>
/// </summary>
public sealed class PostgresLedger : ILedger
{
    /// <summary>Key of the transaction-scoped advisory lock that serialises schema creation ("DyDiTLgr").</summary>
    private const long SchemaLockKey = 0x4479_4469_544C_6772;

    private static readonly string[] SchemaStatements =
    [
        """
        CREATE TABLE IF NOT EXISTS runs (
            run_id text PRIMARY KEY,
            name text NOT NULL,
            spec_json text NOT NULL,
            output_directory text NOT NULL,
            num_samples bigint NOT NULL,
            shard_size integer NOT NULL,
            created_at timestamptz NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS shards (
            run_id text NOT NULL REFERENCES runs (run_id),
            idx integer NOT NULL,
            first bigint NOT NULL,
            count integer NOT NULL,
            state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done')),
            worker_id text,
            lease_expires timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            samples_done integer NOT NULL DEFAULT 0,
            file text,
            sha256 text,
            samples integer,
            seconds double precision,
            macs bigint,
            result_worker text,
            host text,
            features_file text,
            features_sha256 text,
            completed_at timestamptz,
            PRIMARY KEY (run_id, idx))
        """,
        "CREATE INDEX IF NOT EXISTS shards_by_state ON shards (state, run_id, idx)",
        """
        CREATE TABLE IF NOT EXISTS workers (
            worker_id text PRIMARY KEY,
            host text NOT NULL,
            pid integer NOT NULL,
            device text NOT NULL,
            state text NOT NULL,
            started_at timestamptz NOT NULL,
            last_seen timestamptz NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            kind text NOT NULL,
            run_id text,
            shard_idx integer,
            worker_id text,
            detail text)
        """,
        "CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id)",
    ];

    private readonly NpgsqlDataSource _dataSource;

    /// <summary>Uses the database that <paramref name="connectionString"/> (Npgsql form; see <see cref="ToConnectionString"/>) names.</summary>
    public PostgresLedger(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new LedgerException($"'{Redact(connectionString)}' is not a valid PostgreSQL connection string: {e.Message}", e);
        }

        Description = PostgresLocation.Describe(builder);
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    public string Description { get; }

    /// <summary>
    /// An Npgsql connection string for <paramref name="location"/>: a <c>postgres://</c> or <c>postgresql://</c> URL
    /// (user and password %-decoded, port 5432 unless given, <c>?host=/dir</c> for a unix socket directory, libpq
    /// parameters such as <c>sslmode=verify-full</c> translated) or an Npgsql connection string, returned unchanged.
    /// </summary>
    /// <exception cref="LedgerException">The URL or connection string is malformed (the message has the password hidden).</exception>
    public static string ToConnectionString(string location) => PostgresLocation.ToConnectionString(location);

    /// <summary><paramref name="location"/> (URL or connection string) with every password replaced by <c>***</c>.</summary>
    public static string Redact(string location) => PostgresLocation.Redact(location);

    public async Task EnsureSchemaAsync(CancellationToken cancellation = default)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
            // CREATE TABLE IF NOT EXISTS is not safe against itself (two sessions can both decide to create and one fails
            // on the catalog's unique index), so creators take turns; the lock ends with the transaction.
            await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock(@key)", cancellation, P("key", SchemaLockKey)).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction,
                "CREATE TABLE IF NOT EXISTS schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)", cancellation).ConfigureAwait(false);
            object? found;
            await using (var select = Command(connection, transaction, "SELECT version FROM schema_version WHERE id = 1"))
                found = await select.ExecuteScalarAsync(cancellation).ConfigureAwait(false);
            if (found is int version && version > LedgerRows.SchemaVersion)
                throw new LedgerException(LedgerRows.NewerSchemaMessage(Description, version));
            if (found is int current && current == LedgerRows.SchemaVersion)
            {
                // Already current: no DDL, so starting many workers at once does not queue them behind each other's CREATEs.
                await transaction.CommitAsync(cancellation).ConfigureAwait(false);
                return;
            }

            foreach (string statement in SchemaStatements) await ExecuteAsync(connection, transaction, statement, cancellation).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, "INSERT INTO schema_version (id, version) VALUES (1, @v) ON CONFLICT (id) DO NOTHING",
                cancellation, P("v", LedgerRows.SchemaVersion)).ConfigureAwait(false);
            await transaction.CommitAsync(cancellation).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw new LedgerException($"cannot use the PostgreSQL ledger {Description}: {e.Message}", e);
        }
    }

    public async Task<RunRecord> RegisterRunAsync(RunRecord run, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(run);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
        // A concurrent registration of the same id waits on the primary key until the first commits, then does nothing.
        int added = await ExecuteAsync(connection, transaction,
            "INSERT INTO runs (run_id, name, spec_json, output_directory, num_samples, shard_size, created_at) " +
            "VALUES (@id, @name, @spec, @out, @n, @size, @created) ON CONFLICT (run_id) DO NOTHING", cancellation,
            P("id", run.RunId), P("name", run.Name), P("spec", run.SpecJson), P("out", run.OutputDirectory), P("n", run.NumSamples),
            P("size", run.ShardSize), P("created", run.CreatedAt.ToUniversalTime())).ConfigureAwait(false);
        if (added == 1)
        {
            await ExecuteAsync(connection, transaction,
                "INSERT INTO shards (run_id, idx, first, count) " +
                "SELECT @id, i, i::bigint * @size, LEAST(@size::bigint, @n - i::bigint * @size)::integer FROM generate_series(0, @shards - 1) AS i",
                cancellation, P("id", run.RunId), P("size", run.ShardSize), P("n", run.NumSamples), P("shards", run.ShardCount)).ConfigureAwait(false);
        }

        var stored = (await ReadRunsAsync(connection, transaction, "WHERE run_id = @id", cancellation, P("id", run.RunId)).ConfigureAwait(false)).Single();
        await transaction.CommitAsync(cancellation).ConfigureAwait(false);
        return stored;
    }

    public async Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        return (await ReadRunsAsync(connection, null, "WHERE run_id = @id", cancellation, P("id", runId)).ConfigureAwait(false)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken cancellation = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        return await ReadRunsAsync(connection, null, "", cancellation).ConfigureAwait(false);
    }

    public async Task RegisterWorkerAsync(WorkerInfo worker, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentException.ThrowIfNullOrWhiteSpace(worker.WorkerId);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await ExecuteAsync(connection, null,
            "INSERT INTO workers (worker_id, host, pid, device, state, started_at, last_seen) " +
            "VALUES (@id, @host, @pid, @device, 'running', now(), now()) " +
            "ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, device = excluded.device, " +
            "state = 'running', last_seen = excluded.last_seen",
            cancellation, P("id", worker.WorkerId), P("host", worker.Host), P("pid", worker.ProcessId), P("device", worker.Device)).ConfigureAwait(false);
    }

    public async Task WorkerStoppedAsync(string workerId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(workerId);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await ExecuteAsync(connection, null, "UPDATE workers SET state = 'stopped', last_seen = now() WHERE worker_id = @id", cancellation,
            P("id", workerId)).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<WorkerRecord>> GetWorkersAsync(CancellationToken cancellation = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var command = Command(connection, null, $"SELECT {LedgerRows.WorkerColumns} FROM workers ORDER BY started_at, worker_id");
        return await ReadAllAsync(command, r => LedgerRows.ReadWorker(r, ReadTime), cancellation).ConfigureAwait(false);
    }

    public async Task<ShardLease?> ClaimAsync(string workerId, string? runId, TimeSpan leaseFor, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(workerId);
        LedgerRows.ValidateLeaseTime(leaseFor);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
        // SKIP LOCKED: a shard another claimer is taking right now is invisible to this one, which takes the next.
        await using var select = Command(connection, transaction,
            "SELECT s.run_id, s.idx, s.first, s.count, s.state, s.worker_id, s.attempts " +
            "FROM shards s JOIN runs r ON r.run_id = s.run_id " +
            "WHERE (s.state = 'pending' OR (s.state = 'leased' AND s.lease_expires < now()))" +
            (runId is null ? "" : " AND s.run_id = @run") +
            " ORDER BY r.created_at, s.run_id, s.idx LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
            runId is null ? [] : [P("run", runId)]);
        string shardRun, previousState;
        string? previousWorker;
        int index, count, attempts;
        long first;
        await using (var reader = await select.ExecuteReaderAsync(cancellation).ConfigureAwait(false))
        {
            if (!await reader.ReadAsync(cancellation).ConfigureAwait(false)) return null;
            (shardRun, index, first, count) = (reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt32(3));
            (previousState, previousWorker, attempts) = (reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetInt32(6));
        }

        int attempt = attempts + 1;
        await ExecuteAsync(connection, transaction,
            "UPDATE shards SET state = 'leased', worker_id = @worker, lease_expires = now() + @lease, attempts = @attempt, samples_done = 0 " +
            "WHERE run_id = @run AND idx = @idx",
            cancellation, P("worker", workerId), P("lease", leaseFor), P("attempt", attempt), P("run", shardRun), P("idx", index)).ConfigureAwait(false);
        bool released = previousState == LedgerRows.StateName(ShardState.Leased);
        if (released)
            await InsertEventAsync(connection, transaction, new LedgerEvent(default, LedgerEventKind.Released, shardRun, index, workerId, previousWorker),
                cancellation).ConfigureAwait(false);
        await InsertEventAsync(connection, transaction,
            new LedgerEvent(default, LedgerEventKind.Claimed, shardRun, index, workerId, "attempt " + attempt.ToString(CultureInfo.InvariantCulture)),
            cancellation).ConfigureAwait(false);
        await transaction.CommitAsync(cancellation).ConfigureAwait(false);
        return new ShardLease(shardRun, index, first, count, workerId, attempt, released);
    }

    public async Task<bool> HeartbeatAsync(ShardLease lease, TimeSpan leaseFor, int samplesDone, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(lease);
        LedgerRows.ValidateLeaseTime(leaseFor);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
        int held = await ExecuteAsync(connection, transaction,
            "UPDATE shards SET lease_expires = now() + @lease, samples_done = @done " +
            "WHERE run_id = @run AND idx = @idx AND state = 'leased' AND worker_id = @worker AND attempts = @attempt",
            cancellation, P("lease", leaseFor), P("done", samplesDone), P("run", lease.RunId), P("idx", lease.ShardIndex), P("worker", lease.WorkerId),
            P("attempt", lease.Attempt)).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "UPDATE workers SET last_seen = now() WHERE worker_id = @worker", cancellation,
            P("worker", lease.WorkerId)).ConfigureAwait(false);
        await transaction.CommitAsync(cancellation).ConfigureAwait(false);
        return held == 1;
    }

    public async Task<bool> CompleteAsync(ShardLease lease, ShardResult result, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(lease);
        LedgerRows.Validate(result);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
        string state, storedSha256;
        await using (var select = Command(connection, transaction, "SELECT state, sha256 FROM shards WHERE run_id = @run AND idx = @idx FOR UPDATE",
                         P("run", lease.RunId), P("idx", lease.ShardIndex)))
        await using (var reader = await select.ExecuteReaderAsync(cancellation).ConfigureAwait(false))
        {
            if (!await reader.ReadAsync(cancellation).ConfigureAwait(false)) throw NoShard(lease.RunId, lease.ShardIndex);
            (state, storedSha256) = (reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1));
        }

        bool accepted;
        if (state == LedgerRows.StateName(ShardState.Done))
        {
            accepted = LedgerRows.SameSha256(storedSha256, result.Sha256);
            if (!accepted)
                await InsertEventAsync(connection, transaction, new LedgerEvent(default, LedgerEventKind.Conflict, lease.RunId, lease.ShardIndex,
                    lease.WorkerId, LedgerRows.ConflictDetail(storedSha256, result)), cancellation).ConfigureAwait(false);
        }
        else
        {
            await ExecuteAsync(connection, transaction,
                "UPDATE shards SET state = 'done', worker_id = @worker, lease_expires = NULL, samples_done = @samples, file = @file, " +
                "sha256 = @sha, samples = @samples, seconds = @seconds, macs = @macs, result_worker = @resultWorker, host = @host, " +
                "features_file = @featuresFile, features_sha256 = @featuresSha, completed_at = now() WHERE run_id = @run AND idx = @idx",
                cancellation, P("worker", lease.WorkerId), P("samples", result.Samples), P("file", result.File), P("sha", result.Sha256),
                P("seconds", result.Seconds), P("macs", result.MultiplyAccumulates), P("resultWorker", result.WorkerId), P("host", result.Host),
                P("featuresFile", result.FeaturesFile), P("featuresSha", result.FeaturesSha256), P("run", lease.RunId),
                P("idx", lease.ShardIndex)).ConfigureAwait(false);
            await InsertEventAsync(connection, transaction, new LedgerEvent(default, LedgerEventKind.Completed, lease.RunId, lease.ShardIndex,
                lease.WorkerId, LedgerRows.CompletedDetail(result)), cancellation).ConfigureAwait(false);
            accepted = true;
        }

        await transaction.CommitAsync(cancellation).ConfigureAwait(false);
        return accepted;
    }

    public async Task AbandonAsync(ShardLease lease, string reason, CancellationToken cancellation = default)
    {
        LedgerRows.Validate(lease);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
        int given = await ExecuteAsync(connection, transaction,
            "UPDATE shards SET state = 'pending', worker_id = NULL, lease_expires = NULL, samples_done = 0 " +
            "WHERE run_id = @run AND idx = @idx AND state = 'leased' AND worker_id = @worker AND attempts = @attempt",
            cancellation, P("run", lease.RunId), P("idx", lease.ShardIndex), P("worker", lease.WorkerId), P("attempt", lease.Attempt)).ConfigureAwait(false);
        if (given == 1)
            await InsertEventAsync(connection, transaction,
                new LedgerEvent(default, LedgerEventKind.Abandoned, lease.RunId, lease.ShardIndex, lease.WorkerId, reason), cancellation).ConfigureAwait(false);
        await transaction.CommitAsync(cancellation).ConfigureAwait(false);
    }

    public async Task ResetShardAsync(string runId, int shardIndex, string reason, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
        int reset = await ExecuteAsync(connection, transaction,
            "UPDATE shards SET state = 'pending', worker_id = NULL, lease_expires = NULL, samples_done = 0, file = NULL, sha256 = NULL, " +
            "samples = NULL, seconds = NULL, macs = NULL, result_worker = NULL, host = NULL, features_file = NULL, features_sha256 = NULL, " +
            "completed_at = NULL WHERE run_id = @run AND idx = @idx",
            cancellation, P("run", runId), P("idx", shardIndex)).ConfigureAwait(false);
        if (reset == 0) throw NoShard(runId, shardIndex);
        await InsertEventAsync(connection, transaction, new LedgerEvent(default, LedgerEventKind.Reset, runId, shardIndex, null, reason), cancellation)
            .ConfigureAwait(false);
        await transaction.CommitAsync(cancellation).ConfigureAwait(false);
    }

    public async Task SetShardFeaturesAsync(string runId, int shardIndex, string featuresFile, string featuresSha256, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        ArgumentException.ThrowIfNullOrWhiteSpace(featuresFile);
        ArgumentException.ThrowIfNullOrWhiteSpace(featuresSha256);
        if (!LedgerRows.IsPlainFileName(featuresFile))
            throw new ArgumentException($"features file '{featuresFile}' is not a plain file name in the run's output directory", nameof(featuresFile));
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        int set = await ExecuteAsync(connection, null,
            "UPDATE shards SET features_file = @file, features_sha256 = @sha WHERE run_id = @run AND idx = @idx AND state = 'done'",
            cancellation, P("file", featuresFile), P("sha", featuresSha256), P("run", runId), P("idx", shardIndex)).ConfigureAwait(false);
        if (set == 0)
            throw new LedgerException($"shard {shardIndex} of run '{runId}' in {Description} is missing or not done; " +
                "features can only be attached to a completed shard");
    }

    public async Task<IReadOnlyList<ShardRecord>> GetShardsAsync(string runId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var command = Command(connection, null, $"SELECT {LedgerRows.ShardColumns} FROM shards WHERE run_id = @run ORDER BY idx", P("run", runId));
        return await ReadAllAsync(command, r => LedgerRows.ReadShard(r, ReadTime, Description), cancellation).ConfigureAwait(false);
    }

    /// <summary>Appends <paramref name="e"/>; an <see cref="LedgerEvent.At"/> of <c>default</c> means the server's now().</summary>
    public async Task AddEventAsync(LedgerEvent e, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await InsertEventAsync(connection, null, e, cancellation).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<LedgerEvent>> GetEventsAsync(string? runId, CancellationToken cancellation = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        await using var command = runId is null
            ? Command(connection, null, $"SELECT {LedgerRows.EventColumns} FROM events ORDER BY id")
            : Command(connection, null, $"SELECT {LedgerRows.EventColumns} FROM events WHERE run_id = @run ORDER BY id", P("run", runId));
        return await ReadAllAsync(command, r => LedgerRows.ReadEvent(r, ReadTime), cancellation).ConfigureAwait(false);
    }

    /// <summary>Closes the pooled connections.</summary>
    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    public override string ToString() => Description;

    // ---- plumbing ----

    /// <summary>A typed parameter; null becomes SQL NULL of the type <typeparamref name="T"/> maps to.</summary>
    private static NpgsqlParameter P<T>(string name, T value) => new NpgsqlParameter<T>(name, value);

    private static NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.AddRange(parameters);
        return command;
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellation,
        params NpgsqlParameter[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellation).ConfigureAwait(false);
    }

    private static async Task<List<T>> ReadAllAsync<T>(NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken cancellation)
    {
        var rows = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(cancellation).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellation).ConfigureAwait(false)) rows.Add(read(reader));
        return rows;
    }

    private async Task<List<RunRecord>> ReadRunsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string where,
        CancellationToken cancellation, params NpgsqlParameter[] parameters)
    {
        await using var command = Command(connection, transaction, $"SELECT {LedgerRows.RunColumns} FROM runs {where} ORDER BY created_at, run_id", parameters);
        return await ReadAllAsync(command, r => LedgerRows.ReadRun(r, ReadTime, Description), cancellation).ConfigureAwait(false);
    }

    /// <summary>Inserts an event stamped with the server's clock unless the event carries its own time.</summary>
    private static Task<int> InsertEventAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, LedgerEvent e, CancellationToken cancellation) =>
        ExecuteAsync(connection, transaction,
            "INSERT INTO events (at, kind, run_id, shard_idx, worker_id, detail) VALUES (COALESCE(@at, now()), @kind, @run, @shard, @worker, @detail)",
            cancellation,
            new NpgsqlParameter("at", NpgsqlDbType.TimestampTz) { Value = e.At == default ? DBNull.Value : e.At.ToUniversalTime() },
            P("kind", e.Kind.ToString()), P("run", e.RunId), P("shard", e.ShardIndex), P("worker", e.WorkerId), P("detail", e.Detail));

    private static DateTimeOffset ReadTime(System.Data.Common.DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

    private LedgerException NoShard(string runId, int index) =>
        new($"{Description} has no shard {index} of run '{runId}'; was the run registered in a different ledger?");
}
