using System.CommandLine;
using System.Globalization;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cli.Commands;
using DyDiT.Eval.Cluster.Work;

namespace DyDiT.Eval.Cli;

/// <summary>The <c>--ledger</c> and <c>--ledger-patience</c> options of run, worker and merge, and opening what they name.</summary>
internal static class LedgerOption
{
    public static Option<string?> Create(string? defaultText = null) => new("--ledger")
    {
        Description = "postgres://user:password@host:port/db (or an Npgsql 'Host=…;' string) for several hosts, or an SQLite file " +
                      $"(sqlite:PATH or a path) for one; default: ${Ledgers.EnvironmentVariable}" + (defaultText == null ? "" : ", else " + defaultText),
    };

    /// <summary><c>--ledger-patience</c>: seconds of retrying an unreachable ledger (at start-up too).</summary>
    public static Option<double> CreatePatience(string description) => new("--ledger-patience")
    {
        Description = description,
        DefaultValueFactory = _ => 600,
    };

    /// <summary>The patience <c>--ledger-patience</c> gave; a usage error naming the option when it is out of range.</summary>
    public static TimeSpan Patience(double seconds)
    {
        if (!(seconds >= LedgerRetry.MinPatience.TotalSeconds && seconds <= LedgerRetry.MaxPatience.TotalSeconds))
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"--ledger-patience must be between {LedgerRetry.MinPatience.TotalSeconds} and {LedgerRetry.MaxPatience.TotalSeconds} seconds, found {seconds}"));
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>The flag, else $DYDIT_EVAL_LEDGER, else <paramref name="fallback"/>; a usage error when none is there.</summary>
    public static string Resolve(string? flag, string? fallback = null)
    {
        if (!string.IsNullOrWhiteSpace(flag)) return flag;
        var env = Environment.GetEnvironmentVariable(Ledgers.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return env;
        return fallback ?? throw new UsageException($"--ledger is required (or set {Ledgers.EnvironmentVariable})");
    }

    /// <summary>
    /// Opens the ledger (exit 3 naming it, password hidden, when it cannot be reached; with <paramref name="patience"/>, a
    /// refused or dropped connection is retried that long first) and runs <paramref name="body"/>. A ledger whose rows
    /// cannot be trusted (<see cref="LedgerDataException"/>) is bad input (exit 1). With <paramref name="removeIfUnused"/>,
    /// an SQLite ledger this call created is deleted again when <paramref name="body"/> fails before any run is in it, so
    /// a refused run leaves no <c>ledger.sqlite</c> behind. <paramref name="stop"/> ends the wait for the ledger.
    /// </summary>
    public static int Run(string location, Func<ILedger, Task<int>> body, TimeSpan? patience = null, bool removeIfUnused = false,
        CancellationToken stop = default) =>
        RunAsync(location, body, patience, removeIfUnused, stop).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string location, Func<ILedger, Task<int>> body, TimeSpan? patience, bool removeIfUnused,
        CancellationToken stop)
    {
        string? created = !Ledgers.IsPostgres(location) && !File.Exists(Ledgers.SqlitePath(location)) ? Ledgers.SqlitePath(location) : null;
        ILedger ledger;
        try
        {
            var retry = patience is { } p ? new LedgerRetry(p, m => Console.Error.WriteLine(m), Ledgers.Redact(location)) : null;
            ledger = await Ledgers.OpenAsync(location, stop, retry);
        }
        catch (Exception e) when (e is not LedgerException and not OperationCanceledException and not UsageException)
        {
            throw new LedgerException($"cannot open the ledger {Ledgers.Redact(location)}: {e.Message}", e);
        }
        try
        {
            await using (ledger) return await body(ledger);
        }
        catch (LedgerDataException e)
        {
            throw new RunFailedException(e.Message);
        }
        catch (IOException e) when (DiskFullException.Is(e))
        {
            throw new EnvironmentException(e is DiskFullException ? e.Message : $"no space left on device: {e.Message}; free space on that disk and run again");
        }
        catch when (removeIfUnused && created != null)
        {
            await RemoveIfUnused(created);
            throw;
        }
    }

    /// <summary>Deletes the SQLite ledger at <paramref name="path"/> (and its WAL files) when it holds no run.</summary>
    private static async Task RemoveIfUnused(string path)
    {
        try
        {
            bool empty;
            await using (var ledger = new SqliteLedger(path))
                empty = (await ledger.ListRunsAsync()).Count == 0;
            if (empty)
                foreach (var f in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
                    File.Delete(f);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Leave it: a ledger that cannot be read now is not ours to judge.
        }
    }
}

/// <summary>Something missing from the machine (exit code 3), with what to do about it.</summary>
internal sealed class EnvironmentException(string message) : Exception(message);
