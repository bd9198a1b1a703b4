using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// How workers and the run driver survive a ledger that goes away for a while (PostgreSQL restarted, a network blip, SQLite
/// busy): every ledger call is retried with exponential backoff and jitter (0.2 s doubling to at most 10 s) until it
/// succeeds or <see cref="Patience"/> has passed, then a <see cref="LedgerException"/> naming the ledger and the last
/// error surfaces. Only errors that an outage explains are retried (a lost or refused connection, a busy or locked
/// database, a server shutting down); permanent ones — a missing table, a schema from a newer tool, a constraint, a full
/// SQLite disk — become a <see cref="LedgerException"/> at once. Schema and URL problems (<see cref="LedgerException"/>)
/// and cancellation are not retried.
/// </summary>
public sealed class LedgerRetry
{
    /// <summary>The longest patience (Polly's timeout allows at most a day).</summary>
    public static readonly TimeSpan MaxPatience = TimeSpan.FromDays(1);

    /// <summary>The shortest patience.</summary>
    public static readonly TimeSpan MinPatience = TimeSpan.FromMilliseconds(10);

    private readonly ResiliencePipeline _pipeline;
    private readonly string _ledger;
    private string? _lastError;

    /// <param name="patience">How long to retry, in [<see cref="MinPatience"/>, <see cref="MaxPatience"/>].</param>
    /// <param name="log">Where retries are reported.</param>
    /// <param name="ledger">The ledger's description for messages (<see cref="ILedger.Description"/>).</param>
    public LedgerRetry(TimeSpan patience, Action<string>? log = null, string? ledger = null)
    {
        if (patience < MinPatience || patience > MaxPatience)
            throw new ArgumentOutOfRangeException(nameof(patience), patience, $"the ledger patience must be between {MinPatience.TotalSeconds} s and {MaxPatience.TotalSeconds} s");
        Patience = patience;
        _ledger = ledger ?? "the ledger";
        _pipeline = new ResiliencePipelineBuilder()
            .AddTimeout(new TimeoutStrategyOptions { Timeout = patience })
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = TimeSpan.FromSeconds(10),
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    _lastError = $"{args.Outcome.Exception?.GetType().Name}: {FirstLine(args.Outcome.Exception?.Message)}";
                    if (args.AttemptNumber == 0 || args.AttemptNumber % 5 == 4)
                        log?.Invoke($"ledger unavailable ({args.Outcome.Exception?.GetType().Name}: {FirstLine(args.Outcome.Exception?.Message)}); " +
                                    $"retrying (attempt {args.AttemptNumber + 1}, next in {args.RetryDelay.TotalSeconds:F1} s)");
                    return default;
                },
            })
            .Build();
    }

    /// <summary>How long a call keeps retrying before the error is given up to the caller.</summary>
    public TimeSpan Patience { get; }

    /// <summary>Runs <paramref name="call"/> with retries.</summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellation)
    {
        try
        {
            return await _pipeline.ExecuteAsync(async ct => await call(ct).ConfigureAwait(false), cancellation).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException e)
        {
            throw new LedgerException($"{_ledger} did not answer for {Patience.TotalSeconds:0.###} s" + (_lastError == null ? "" : $" (last error: {_lastError})"), e);
        }
        catch (System.Data.Common.DbException e) when (!IsTransient(e))
        {
            throw new LedgerException($"{_ledger} failed with an error that waiting cannot fix ({FirstLine(e.Message)}); it was not retried: " +
                                      "check that this is a dydit-eval ledger of this version and that its disk has room, or use a fresh one", e);
        }
    }

    public Task RunAsync(Func<CancellationToken, Task> call, CancellationToken cancellation) =>
        RunAsync(async ct =>
        {
            await call(ct).ConfigureAwait(false);
            return true;
        }, cancellation);

    /// <summary>
    /// Whether an outage explains <paramref name="e"/>: a dropped or refused connection (Npgsql's own errors, I/O, socket,
    /// timeout, Npgsql's InvalidOperationException on a broken connector), a server error of the connection, resource,
    /// shutdown, system or transaction-rollback classes (08, 53, 57, 58, 40, 55P03), SQLite busy or locked, and
    /// a <see cref="LedgerException"/> that such an error caused (a ledger unreachable while it is opened). Anything else
    /// a database says — a missing table, a constraint, SQLite's "disk full" or I/O error — is permanent.
    /// </summary>
    internal static bool IsTransient(Exception e) => e switch
    {
        Microsoft.Data.Sqlite.SqliteException s => s.SqliteErrorCode is 5 or 6,
        Npgsql.PostgresException p => p.SqlState.Length == 5 && (p.SqlState[..2] is "08" or "53" or "57" or "58" or "40" || p.SqlState == "55P03"),
        Npgsql.NpgsqlException => true,
        System.Data.Common.DbException => false,
        LedgerException { InnerException: System.Data.Common.DbException inner } => IsTransient(inner),
        IOException or System.Net.Sockets.SocketException or TimeoutException => true,
        InvalidOperationException => e.Source == "Npgsql",
        _ => false,
    };

    private static string FirstLine(string? s) => s == null ? "" : s.Split('\n')[0].Trim();
}
