using System.CommandLine;
using DyDiT.Eval.Cluster.Ledger;

namespace DyDiT.Eval.Cli;

/// <summary>The <c>--ledger</c> option of run, worker and merge, and opening what it names.</summary>
internal static class LedgerOption
{
    public static Option<string?> Create(string? defaultText = null) => new("--ledger")
    {
        Description = "postgres://user:password@host:port/db (or an Npgsql 'Host=…;' string) for several hosts, or an SQLite file " +
                      $"(sqlite:PATH or a path) for one; default: ${Ledgers.EnvironmentVariable}" + (defaultText == null ? "" : ", else " + defaultText),
    };

    /// <summary>The flag, else $DYDIT_EVAL_LEDGER, else <paramref name="fallback"/>; a usage error when none is there.</summary>
    public static string Resolve(string? flag, string? fallback = null)
    {
        if (!string.IsNullOrWhiteSpace(flag)) return flag;
        var env = Environment.GetEnvironmentVariable(Ledgers.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return env;
        return fallback ?? throw new UsageException($"--ledger is required (or set {Ledgers.EnvironmentVariable})");
    }

    /// <summary>Opens the ledger (exit 3 naming it, password hidden, when it cannot be reached) and runs <paramref name="body"/>.</summary>
    public static int Run(string location, Func<ILedger, Task<int>> body) => RunAsync(location, body).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string location, Func<ILedger, Task<int>> body)
    {
        ILedger ledger;
        try
        {
            ledger = await Ledgers.OpenAsync(location);
        }
        catch (Exception e) when (e is not LedgerException and not OperationCanceledException and not UsageException)
        {
            throw new LedgerException($"cannot open the ledger {Ledgers.Redact(location)}: {e.Message}", e);
        }
        await using (ledger) return await body(ledger);
    }
}

/// <summary>Something missing from the machine (exit code 3), with what to do about it.</summary>
internal sealed class EnvironmentException(string message) : Exception(message);
