using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// How workers and the run driver survive a ledger that goes away for a while (PostgreSQL restarted, a network blip, SQLite
/// busy): every ledger call is retried with exponential backoff and jitter (0.2 s doubling to at most 10 s) until it
/// succeeds or <see cref="Patience"/> has passed, then the last error surfaces. Schema and URL problems
/// (<see cref="LedgerException"/>) and cancellation are not retried.
/// </summary>
public sealed class LedgerRetry
{
    private readonly ResiliencePipeline _pipeline;

    public LedgerRetry(TimeSpan patience, Action<string>? log = null)
    {
        Patience = patience;
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
            throw new LedgerException($"the ledger did not answer for {Patience.TotalSeconds:F0} s", e);
        }
    }

    public Task RunAsync(Func<CancellationToken, Task> call, CancellationToken cancellation) =>
        RunAsync(async ct =>
        {
            await call(ct).ConfigureAwait(false);
            return true;
        }, cancellation);

    // Both providers' errors derive from DbException; a dropped connection may also surface as an I/O, socket or
    // timeout error, or as Npgsql's InvalidOperationException on a broken connector.
    private static bool IsTransient(Exception e) =>
        e is System.Data.Common.DbException or IOException or System.Net.Sockets.SocketException or TimeoutException
        || (e is InvalidOperationException && e.Source == "Npgsql");

    private static string FirstLine(string? s) => s == null ? "" : s.Split('\n')[0].Trim();
}
