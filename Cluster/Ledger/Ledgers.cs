namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>Opens a ledger from what users type: a PostgreSQL URL or connection string, or an SQLite file.</summary>
public static class Ledgers
{
    /// <summary>The environment variable a worker reads when no <c>--ledger</c> is given.</summary>
    public const string EnvironmentVariable = "DYDIT_EVAL_LEDGER";

    /// <summary>The SQLite ledger's file name next to a run's output.</summary>
    public const string DefaultSqliteFileName = "ledger.sqlite";

    /// <summary>
    /// <c>postgres://user:pw@host:port/db?…</c>, <c>postgresql://…</c> or an Npgsql connection string (<c>Host=…;…</c>)
    /// → PostgreSQL; <c>sqlite:PATH</c>, <c>sqlite://PATH</c> or a plain file path → SQLite (created if missing).
    /// The schema is created or checked before the ledger is returned; with <paramref name="retry"/>, a server that refuses
    /// or drops the connection is tried again until its patience runs out (a ledger started a little after its workers).
    /// </summary>
    public static async Task<ILedger> OpenAsync(string location, CancellationToken cancellation = default, LedgerRetry? retry = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(location);
        ILedger ledger = IsPostgres(location)
            ? new PostgresLedger(PostgresLedger.ToConnectionString(location))
            : new SqliteLedger(SqlitePath(location));
        try
        {
            if (retry == null) await ledger.EnsureSchemaAsync(cancellation).ConfigureAwait(false);
            else await retry.RunAsync(ct => ledger.EnsureSchemaAsync(ct), cancellation).ConfigureAwait(false);
            return ledger;
        }
        catch
        {
            await ledger.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public static bool IsPostgres(string location) =>
        location.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        location.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) ||
        location.Contains("Host=", StringComparison.OrdinalIgnoreCase);

    /// <summary>The SQLite file a location names.</summary>
    public static string SqlitePath(string location)
    {
        string path = location.StartsWith("sqlite://", StringComparison.OrdinalIgnoreCase) ? location["sqlite://".Length..]
            : location.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase) ? location["sqlite:".Length..]
            : location;
        return Path.GetFullPath(path);
    }

    /// <summary>The location with any password replaced by <c>***</c>, for messages and logs.</summary>
    public static string Redact(string location) =>
        IsPostgres(location) ? PostgresLedger.Redact(location) : "sqlite:" + SqlitePath(location);
}
