using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DyDiT.Eval.Cluster.Ledger;
using Npgsql;

namespace DyDiT.Eval.Bench;

/// <summary>
/// How the shard ledger scales with workers: N separate worker processes (<see cref="LedgerWorker"/>; a cluster is
/// processes, and SQLite's locking is per process) drain one run through SQLite and through PostgreSQL, each shard costing
/// a fixed sleep per sample. Throughput, efficiency against N × one worker, and the ledger's share per shard (claim +
/// complete wall time) are measured for N = 1, 2, 4, 8; a saturation run (8 workers, no stand-in cost) measures how many
/// shards per second the ledger itself can hand out here. From these it extrapolates, with the model printed, to 64
/// GPU workers on 1,000-sample shards.
/// </summary>
internal static class LedgerBenchmark
{
    private const int ShardSize = 10;
    private const double MsPerSample = 2;
    private const double LeaseSeconds = 60; // the CLI's default --lease-seconds: heartbeats every 12 s
    private const int SaturationWorkers = 8;

    // The extrapolation's inputs. The shard time is an ASSUMPTION (no GPU measurement in this repository): DiT-XL/2 at
    // 256², 250 DDPM steps with classifier-free guidance (a doubled batch) runs at roughly 1,000 samples in 10 minutes on
    // one A100.
    private const int TargetWorkers = 64;
    private const int TargetShardSamples = 1_000;
    private const double AssumedShardSeconds = 600;
    private const long Fid50kSamples = 50_000;
    private const double RealIdlePollSeconds = 2; // ShardWorker's IdlePoll for --lease-seconds >= 4

    public static int Run(bool quick) => RunAsync(quick).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(bool quick)
    {
        int samples = quick ? 2_000 : 4_000;
        int[] workerCounts = quick ? [1, 2, 8] : [1, 2, 4, 8];
        int shards = samples / ShardSize;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Ledger scaling: {samples:N0} samples in {shards} shards of {ShardSize}; generator stand-in = sleep {MsPerSample} ms/sample " +
            $"({ShardSize * MsPerSample} ms/shard) — a sleep, not a CPU spin: this machine has {Environment.ProcessorCount} core(s), fewer than 8 workers."));
        Console.WriteLine("Workers are separate processes (dotnet … ledger-worker), started and warmed up (one claim + complete each) before a common");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"start signal; wall = start signal → last completion. Lease {LeaseSeconds} s (heartbeat every {LeaseSeconds / 5} s). Ledger ms/shard = ClaimAsync + CompleteAsync wall time as the worker sees it."));
        Console.WriteLine("Workers, the ledger (SQLite library / PostgreSQL server) and this driver share the same cores: at N > cores the latencies include CPU queueing.");

        var results = new List<Measurement>();
        string scratch = Path.Combine(Path.GetTempPath(), "dydit-bench-ledger-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(scratch);
        try
        {
            // SQLite: a fresh file per measurement, so that no earlier run's rows or WAL weigh on the next.
            Console.WriteLine();
            Console.WriteLine("SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE; one file on local disk)");
            foreach (int n in workerCounts)
                results.Add(await MeasureAsync("SQLite", Path.Combine(scratch, $"ledger-n{n}.sqlite"), n, samples, MsPerSample, scratch).ConfigureAwait(false));
            results.Add(await MeasureAsync("SQLite", Path.Combine(scratch, "ledger-saturation.sqlite"), SaturationWorkers, samples, 0, scratch).ConfigureAwait(false));
            PrintTable(results.Where(r => r.Ledger == "SQLite").ToList());

            Console.WriteLine();
            if (ThrowawayPostgres.UnavailableReason(out _, out _) is { } why)
            {
                Console.WriteLine($"PostgreSQL: skipped — {why}");
            }
            else
            {
                await using var server = await ThrowawayPostgres.StartAsync().ConfigureAwait(false);
                Console.WriteLine($"PostgreSQL ({server.Version}; throw-away server on 127.0.0.1:{server.Port}, fsync on; FOR UPDATE SKIP LOCKED)");
                foreach (int n in workerCounts)
                {
                    string database = await CreateDatabaseAsync(server, $"bench_n{n}").ConfigureAwait(false);
                    results.Add(await MeasureAsync("PostgreSQL", server.ConnectionString(database), n, samples, MsPerSample, scratch).ConfigureAwait(false));
                }

                string saturation = await CreateDatabaseAsync(server, "bench_saturation").ConfigureAwait(false);
                results.Add(await MeasureAsync("PostgreSQL", server.ConnectionString(saturation), SaturationWorkers, samples, 0, scratch).ConfigureAwait(false));
                PrintTable(results.Where(r => r.Ledger == "PostgreSQL").ToList());
            }

            PrintExtrapolation(results);
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<string> CreateDatabaseAsync(ThrowawayPostgres server, string name)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString("postgres"));
        await connection.OpenAsync().ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        return name;
    }

    /// <summary>One measurement: register a warm-up run (one 1-sample shard per worker) and the measured run, start
    /// <paramref name="workers"/> processes, wait for all to be ready, signal go, collect their timings, and check the
    /// ledger afterwards (every shard done, each claimed exactly once).</summary>
    private static async Task<Measurement> MeasureAsync(string kind, string location, int workers, int samples, double msPerSample, string scratch)
    {
        string runId = $"bench-{workers}-{Guid.NewGuid():N}"[..24], warmupId = "warmup-" + runId;
        await using (var ledger = await Ledgers.OpenAsync(location).ConfigureAwait(false))
        {
            var now = DateTimeOffset.UtcNow;
            await ledger.RegisterRunAsync(new RunRecord(warmupId, "ledger bench warm-up", "{}", scratch, workers, 1, now)).ConfigureAwait(false);
            await ledger.RegisterRunAsync(new RunRecord(runId, "ledger bench", "{}", scratch, samples, ShardSize, now)).ConfigureAwait(false);
        }

        var processes = new List<WorkerProcess>();
        try
        {
            for (int i = 0; i < workers; i++)
                processes.Add(WorkerProcess.Start(["--ledger", location, "--run", runId, "--warmup-run", warmupId,
                    "--ms-per-sample", msPerSample.ToString("R", CultureInfo.InvariantCulture), "--lease-seconds", LeaseSeconds.ToString("R", CultureInfo.InvariantCulture)]));
            // Start-up (runtime, JIT, first connection) is not the ledger's scaling: it is paid before the clock starts.
            await Task.WhenAll(processes.Select(p => p.Ready)).WaitAsync(TimeSpan.FromSeconds(120)).ConfigureAwait(false);
            double goUnixMs = (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;
            foreach (var p in processes) p.Go();
            await Task.WhenAll(processes.Select(p => p.ExitAsync(TimeSpan.FromSeconds(300)))).ConfigureAwait(false);

            var timings = new List<ShardTiming>();
            var summaries = new List<WorkerSummary>();
            foreach (var p in processes)
            {
                foreach (string line in p.Lines)
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.TryGetProperty("worker_id", out _)) summaries.Add(doc.RootElement.Deserialize<WorkerSummary>(LedgerWorker.Json)!);
                    else timings.Add(doc.RootElement.Deserialize<ShardTiming>(LedgerWorker.Json)!);
                }
            }

            double wallSeconds = (summaries.Max(s => s.LastCompletedUnixMs) - goUnixMs) / 1000;
            string check = await CheckAsync(location, runId, samples / ShardSize, timings.Count).ConfigureAwait(false);
            var m = new Measurement(kind, workers, msPerSample, samples, samples / ShardSize, wallSeconds, timings,
                summaries.Sum(s => s.EmptyClaims), summaries.Sum(s => s.Heartbeats), check);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {kind,-10} N={workers} {msPerSample} ms/sample: {wallSeconds:F2} s, {check}"));
            return m;
        }
        finally
        {
            foreach (var p in processes) p.Dispose();
        }
    }

    /// <summary>"ok" when every shard is done and was claimed once (no double hand-out under concurrency), else what is wrong.</summary>
    private static async Task<string> CheckAsync(string location, string runId, int shards, int reported)
    {
        await using var ledger = await Ledgers.OpenAsync(location).ConfigureAwait(false);
        var stored = await ledger.GetShardsAsync(runId).ConfigureAwait(false);
        int done = stored.Count(s => s.State == ShardState.Done), reclaimed = stored.Count(s => s.Attempts != 1);
        return done == shards && reclaimed == 0 && reported == shards
            ? "ok"
            : $"CHECK FAILED: {done}/{shards} done, {reclaimed} claimed more than once, {reported} reported by workers";
    }

    private static void PrintTable(List<Measurement> rows)
    {
        var one = rows.FirstOrDefault(r => r.Workers == 1 && r.MsPerSample > 0);
        Console.WriteLine($"{"workers",7} {"wall s",7} {"ideal s",7} {"samples/s",10} {"efficiency",10} {"claim ms",9} {"compl. ms",9} " +
                          $"{"ledger ms/shard",15} {"p95",6} {"shards/s",9} {"empty",6}  check");
        foreach (var r in rows)
        {
            string efficiency = r.MsPerSample > 0 && one != null ? (r.SamplesPerSecond / (r.Workers * one.SamplesPerSecond)).ToString("P1", CultureInfo.InvariantCulture) : "—";
            string ideal = r.MsPerSample > 0 ? r.IdealSeconds.ToString("F2", CultureInfo.InvariantCulture) : "0";
            string workers = r.MsPerSample > 0 ? r.Workers.ToString(CultureInfo.InvariantCulture) : $"{r.Workers}*";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{workers,7} {r.WallSeconds,7:F2} {ideal,7} {r.SamplesPerSecond,10:F0} {efficiency,10} {r.Timings.Average(t => t.ClaimMs),9:F2} " +
                $"{r.Timings.Average(t => t.CompleteMs),9:F2} {r.MeanLedgerMs,15:F2} {r.P95LedgerMs,6:F2} {r.ShardsPerSecond,9:F0} {r.EmptyClaims,6}  {r.Check}"));
        }

        var costs = rows.Where(r => r.MsPerSample > 0).SelectMany(r => r.Timings).Select(t => t.CostMs).ToList();
        if (costs.Count > 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  ideal = total stand-in cost / N; measured stand-in sleep per shard: mean {costs.Average():F2} ms (nominal {ShardSize * MsPerSample} ms). " +
                $"{SaturationWorkers}* = {SaturationWorkers} workers with no stand-in cost: the ledger's own rate here. empty = claims that found nothing (end-of-run polls)."));
    }

    private static void PrintExtrapolation(List<Measurement> results)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Extrapolation to {TargetWorkers} workers × {TargetShardSamples:N0}-sample shards — a MODEL, not a measurement"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  ASSUMPTION (not measured here): DiT-XL/2 256², 250 DDPM steps, cfg: ~{TargetShardSamples:N0} samples in ~{AssumedShardSeconds / 60:F0} min per A100 → T_shard = {AssumedShardSeconds:F0} s."));
        Console.WriteLine("  Model: per-shard ledger cost c(N) = a + b·N, least squares on the mean claim+complete ms at the N measured above;");
        Console.WriteLine("         efficiency(64) = T_shard / (T_shard + c(64)); ledger load = claims + completes + heartbeats per second.");
        double perWorkerRate = 1 / AssumedShardSeconds; // shards per second per worker (c is negligible next to T_shard)
        double claimsPerSecond = TargetWorkers * perWorkerRate;
        double heartbeatsPerSecond = TargetWorkers / (LeaseSeconds / 5);
        double steadyLoad = 2 * claimsPerSecond + heartbeatsPerSecond;
        foreach (string kind in new[] { "PostgreSQL", "SQLite" })
        {
            var rows = results.Where(r => r.Ledger == kind && r.MsPerSample > 0).OrderBy(r => r.Workers).ToList();
            if (rows.Count < 2) continue;
            var (a, b) = FitLine(rows.Select(r => (double)r.Workers).ToArray(), rows.Select(r => r.MeanLedgerMs).ToArray());
            // A fit that falls with N (noise) is not trusted to fall further: never below the largest cost measured.
            double c64 = Math.Max(a + b * TargetWorkers, rows.Max(r => r.MeanLedgerMs));
            double efficiency = AssumedShardSeconds / (AssumedShardSeconds + c64 / 1000);
            var saturation = results.FirstOrDefault(r => r.Ledger == kind && r.MsPerSample == 0);
            var atEight = rows.LastOrDefault();
            Console.WriteLine();
            string scope = kind == "SQLite" ? "   (SQLite serves one host only: this is the many-GPUs-in-one-box case)" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {kind}: c(N) = {a:F2} ms + {b:F3} ms × N  →  c({TargetWorkers}) ≈ {c64:F1} ms per shard{scope}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    predicted efficiency at {TargetWorkers} = {AssumedShardSeconds:F0} / ({AssumedShardSeconds:F0} + {c64 / 1000:F4}) = {efficiency:P4} (ledger overhead {1 - efficiency:P4})"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    load at {TargetWorkers} workers: {claimsPerSecond:F3} claims/s + {claimsPerSecond:F3} completes/s + {heartbeatsPerSecond:F2} heartbeats/s (every {LeaseSeconds / 5:F0} s) ≈ {steadyLoad:F2} transactions/s"));
            if (atEight != null)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"    measured at {atEight.Workers} workers × {ShardSize * MsPerSample:F0} ms shards: {atEight.ShardsPerSecond:F0} claims/s (+ as many completes), p95 {atEight.P95LedgerMs:F1} ms per shard"));
            if (saturation != null)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"    measured at {saturation.Workers} workers, no stand-in cost: {saturation.ShardsPerSecond:F0} claims/s (+ as many completes), p95 {saturation.P95LedgerMs:F1} ms per shard"));
            if (atEight != null || saturation != null)
            {
                // What one ledger can do here: the best rate seen. A lower bound — workers, driver and server share
                // the same few cores, so the busier the workers, the less CPU the ledger gets (why 8* can come out lower).
                var best = results.Where(r => r.Ledger == kind).MaxBy(r => r.ShardsPerSecond)!;
                double capacity = 2 * best.ShardsPerSecond; // a claim and a complete per shard; a heartbeat is a comparable one-row update
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"    capacity (best rate above, a lower bound on {Environment.ProcessorCount} shared cores): {best.ShardsPerSecond:F0} claim+complete pairs/s " +
                    $"≈ {capacity:F0} transactions/s → {capacity / steadyLoad:F0}× the steady load at {TargetWorkers} workers"));
                // The fit above grows with N because here N workers call the ledger back to back on shared cores; at 64 workers
                // × 600 s shards the calls arrive far apart, so the cost is c(1) stretched by the server's utilisation (M/M/1).
                var single = rows.FirstOrDefault(r => r.Workers == 1);
                double utilisation = steadyLoad / capacity;
                if (single != null && utilisation < 1)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"    queueing view: utilisation ρ = {steadyLoad:F2} / {capacity:F0} = {utilisation:P1} → c ≈ c(1) / (1 − ρ) = {single.MeanLedgerMs / (1 - utilisation):F1} ms per shard; " +
                        $"the linear fit (every worker calling back to back) is the pessimistic bound"));
                double tailPolls = (TargetWorkers - 1) * 2 / RealIdlePollSeconds; // an empty claim and a shard listing per poll
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"    end of a run: up to {TargetWorkers - 1} idle workers poll every {RealIdlePollSeconds:F0} s (claim + shard list) ≈ {tailPolls:F0} queries/s → {capacity / tailPolls:F1}× headroom"));
            }
        }

        // Not the ledger, but what decides efficiency at this scale: shards are indivisible, so the run ends with a round
        // in which some workers have nothing left.
        long shards = (Fid50kSamples + TargetShardSamples - 1) / TargetShardSamples;
        long rounds = (shards + TargetWorkers - 1) / TargetWorkers;
        double granularity = (double)shards / (rounds * TargetWorkers);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  For comparison, shard granularity: {Fid50kSamples:N0} samples (FID-50K) = {shards} shards of {TargetShardSamples:N0} on {TargetWorkers} workers = {rounds} round(s), " +
            $"efficiency ≤ {granularity:P0} whatever the ledger; a shard count that is a multiple of the worker count avoids it."));
    }

    /// <summary>Ordinary least squares y = a + b·x.</summary>
    private static (double A, double B) FitLine(double[] x, double[] y)
    {
        double mx = x.Average(), my = y.Average();
        double sxx = x.Sum(v => (v - mx) * (v - mx)), sxy = x.Zip(y, (u, v) => (u - mx) * (v - my)).Sum();
        double b = sxx > 0 ? sxy / sxx : 0;
        return (my - b * mx, b);
    }

    /// <summary>One (ledger, N, cost) measurement and what follows from it.</summary>
    private sealed record Measurement(string Ledger, int Workers, double MsPerSample, int Samples, int Shards, double WallSeconds,
        IReadOnlyList<ShardTiming> Timings, int EmptyClaims, int Heartbeats, string Check)
    {
        public double SamplesPerSecond => Samples / WallSeconds;

        public double ShardsPerSecond => Shards / WallSeconds;

        public double IdealSeconds => Samples * MsPerSample / 1000 / Workers;

        public double MeanLedgerMs => Timings.Average(t => t.ClaimMs + t.CompleteMs);

        /// <summary>Nearest-rank 95th percentile of claim + complete.</summary>
        public double P95LedgerMs
        {
            get
            {
                var sorted = Timings.Select(t => t.ClaimMs + t.CompleteMs).Order().ToArray();
                return sorted[Math.Max(0, (int)Math.Ceiling(0.95 * sorted.Length) - 1)];
            }
        }
    }

    /// <summary>A ledger-worker child: its stdout lines (after "ready"), a task that completes at "ready", and the go signal on stdin.</summary>
    private sealed class WorkerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<string> _lines = [];
        private readonly Task _stdout;
        private readonly Task<string> _stderr;

        private WorkerProcess(Process process)
        {
            _process = process;
            _stderr = process.StandardError.ReadToEndAsync();
            _stdout = Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
                {
                    if (line == "ready") _ready.TrySetResult();
                    else if (line.Length > 0) _lines.Add(line);
                }

                _ready.TrySetException(new InvalidOperationException($"ledger-worker exited before it was ready: {await _stderr.ConfigureAwait(false)}"));
            });
        }

        public Task Ready => _ready.Task;

        public IReadOnlyList<string> Lines => _lines;

        /// <summary>Runs this program's ledger-worker verb: through the dotnet host when we were started by it, else the apphost.</summary>
        public static WorkerProcess Start(string[] arguments)
        {
            string host = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program is running");
            string[] prefix = Path.GetFileNameWithoutExtension(host) == "dotnet"
                ? [Path.Combine(AppContext.BaseDirectory, "DyDiT.Eval.Bench.dll"), "ledger-worker"]
                : ["ledger-worker"];
            var start = new ProcessStartInfo(host, [.. prefix, .. arguments])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            return new WorkerProcess(Process.Start(start) ?? throw new InvalidOperationException("cannot start a ledger-worker"));
        }

        public void Go()
        {
            _process.StandardInput.WriteLine("go");
            _process.StandardInput.Flush();
        }

        public async Task ExitAsync(TimeSpan limit)
        {
            await _process.WaitForExitAsync().WaitAsync(limit).ConfigureAwait(false);
            await _stdout.ConfigureAwait(false);
            string errors = (await _stderr.ConfigureAwait(false)).Trim();
            if (_process.ExitCode != 0) throw new InvalidOperationException($"ledger-worker exited with {_process.ExitCode}: {errors}");
            // A worker that succeeded may still have waited out a busy ledger (LedgerRetry logs it): worth seeing.
            if (errors.Length > 0) Console.Error.WriteLine($"  ledger-worker pid {_process.Id}: {errors.Split('\n')[0]}");
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }
}
