using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DyDiT.Eval.Cluster.Ledger;

namespace DyDiT.Eval.Bench;

/// <summary>
/// The hidden <c>ledger-worker</c> verb: one worker process of the ledger benchmark. It follows ShardWorker's loop —
/// claim → (heartbeats while working) → complete → repeat until nothing is claimable and every shard is done — with the
/// generator replaced by a sleep of a fixed cost per sample, so that what varies with the number of workers is the
/// ledger alone. A sleep, not a CPU spin: this machine may have fewer cores than the benchmark has workers, and a spin
/// would measure the CPU scheduler instead of the ledger.
/// <para>Protocol with <see cref="LedgerBenchmark"/>: the worker opens the ledger, registers, claims and completes one
/// warm-up shard (JIT and the connection pool are paid before timing), prints <c>ready</c>, and blocks on stdin until
/// the driver writes <c>go</c>. At the end it prints one JSON line per shard it completed and one summary line.</para>
/// </summary>
internal static class LedgerWorker
{
    /// <summary>How often to look again when the remaining shards are all leased to others (the real worker waits 2 s;
    /// shorter here so a finished benchmark's processes exit promptly — the measured wall time ends at the last completion anyway).</summary>
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(100);

    internal static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>ledger-worker --ledger L --run ID --warmup-run ID --ms-per-sample X [--lease-seconds S]</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        string? location = null, runId = null, warmupRun = null;
        double msPerSample = 2, leaseSeconds = 60;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--ledger": location = args[i + 1]; break;
                case "--run": runId = args[i + 1]; break;
                case "--warmup-run": warmupRun = args[i + 1]; break;
                case "--ms-per-sample": msPerSample = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--lease-seconds": leaseSeconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"ledger-worker: unknown option {args[i]}"); return 2;
            }
        }

        if (location == null || runId == null)
        {
            Console.Error.WriteLine("usage: ledger-worker --ledger L --run ID [--warmup-run ID] [--ms-per-sample X] [--lease-seconds S]");
            return 2;
        }

        var lease = TimeSpan.FromSeconds(leaseSeconds);
        string workerId = string.Create(CultureInfo.InvariantCulture, $"bench-{Environment.ProcessId}");
        // Every call through LedgerRetry as in ShardWorker, so a busy SQLite file costs what it costs a real worker
        // (a wait, a retry) rather than failing the benchmark.
        var retry = new LedgerRetry(TimeSpan.FromSeconds(60), m => Console.Error.WriteLine($"{workerId}: {m}"));
        await using var ledger = await Ledgers.OpenAsync(location).ConfigureAwait(false);
        await retry.RunAsync(ct => ledger.RegisterWorkerAsync(new WorkerInfo(workerId, Environment.MachineName, Environment.ProcessId, "sleep"), ct),
            CancellationToken.None).ConfigureAwait(false);

        if (warmupRun != null)
        {
            var warm = await retry.RunAsync(ct => ledger.ClaimAsync(workerId, warmupRun, lease, ct), CancellationToken.None).ConfigureAwait(false);
            if (warm != null)
                await retry.RunAsync(ct => ledger.CompleteAsync(warm, FakeResult(warm, workerId, 0), ct), CancellationToken.None).ConfigureAwait(false);
        }

        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        if (Console.In.ReadLine() != "go") return 3; // the driver went away

        var shards = new List<ShardTiming>();
        int emptyClaims = 0, heartbeats = 0;
        double lastCompletedUnixMs = 0;
        while (true)
        {
            long t0 = Stopwatch.GetTimestamp();
            var claimed = await retry.RunAsync(ct => ledger.ClaimAsync(workerId, runId, lease, ct), CancellationToken.None).ConfigureAwait(false);
            double claimMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (claimed == null)
            {
                emptyClaims++;
                var all = await retry.RunAsync(ct => ledger.GetShardsAsync(runId, ct), CancellationToken.None).ConfigureAwait(false);
                if (all.All(s => s.State == ShardState.Done)) break;
                await Task.Delay(IdlePoll).ConfigureAwait(false);
                continue;
            }

            // The stand-in for generating the shard, with ShardWorker's heartbeat beside it (every lease/5; on
            // short stand-in shards it rarely fires, which is also true of its cost relative to a real shard).
            using var stop = new CancellationTokenSource();
            var beating = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        await Task.Delay(lease / 5, stop.Token).ConfigureAwait(false);
                        await retry.RunAsync(ct => ledger.HeartbeatAsync(claimed, lease, 0, ct), stop.Token).ConfigureAwait(false);
                        Interlocked.Increment(ref heartbeats);
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
            long w0 = Stopwatch.GetTimestamp();
            // Thread.Sleep on a pool thread, like the generator's Task.Run: nanosleep is accurate to ~0.1 ms, timers less so.
            await Task.Run(() => Thread.Sleep(TimeSpan.FromMilliseconds(claimed.Count * msPerSample))).ConfigureAwait(false);
            double costMs = Stopwatch.GetElapsedTime(w0).TotalMilliseconds;
            await stop.CancelAsync().ConfigureAwait(false);
            await beating.ConfigureAwait(false);

            var result = FakeResult(claimed, workerId, costMs / 1000);
            long c0 = Stopwatch.GetTimestamp();
            await retry.RunAsync(ct => ledger.CompleteAsync(claimed, result, ct), CancellationToken.None).ConfigureAwait(false);
            double completeMs = Stopwatch.GetElapsedTime(c0).TotalMilliseconds;
            // Wall clock, not a stopwatch: the driver compares it with its own start time in another process.
            lastCompletedUnixMs = (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;
            shards.Add(new ShardTiming(claimed.ShardIndex, claimMs, completeMs, costMs));
        }

        await retry.RunAsync(ct => ledger.WorkerStoppedAsync(workerId, ct), CancellationToken.None).ConfigureAwait(false);
        foreach (var s in shards) Console.Out.WriteLine(JsonSerializer.Serialize(s, Json));
        Console.Out.WriteLine(JsonSerializer.Serialize(new WorkerSummary(workerId, shards.Count, emptyClaims, heartbeats, lastCompletedUnixMs), Json));
        return 0;
    }

    /// <summary>What a real worker would record, with the sha256 of the shard's range text standing in for the file's.</summary>
    private static ShardResult FakeResult(ShardLease lease, string workerId, double seconds)
    {
        string file = string.Create(CultureInfo.InvariantCulture, $"shard-{lease.First}-{lease.First + lease.Count}.npz");
        string sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"{lease.RunId}:{lease.First}+{lease.Count}"))));
        return new ShardResult(file, sha, lease.Count, seconds, 0, workerId, Environment.MachineName);
    }
}

/// <summary>One completed shard: wall time of its ClaimAsync and CompleteAsync calls and of the stand-in work (ms).</summary>
internal sealed record ShardTiming(int Shard, double ClaimMs, double CompleteMs, double CostMs);

/// <summary>A worker's last line: shards done, claims that found nothing, heartbeats sent, when its last completion returned.</summary>
internal sealed record WorkerSummary(string WorkerId, int Shards, int EmptyClaims, int Heartbeats, double LastCompletedUnixMs);
