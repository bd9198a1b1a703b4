using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Tests.Common;
using Microsoft.Data.Sqlite;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// Issue 15's bad-input cases for <c>run</c>, <c>worker</c> and <c>merge</c>, through the real binary on tiny runs of the
/// fixture DiT (a few samples, two steps: seconds each): a tampered ledger, two runs in one directory, permanent ledger
/// errors, a huge spec, signals, a refused PostgreSQL connection, a full disk, and option and run.json mistakes.
/// </summary>
public sealed class RunBadInputTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-runbad-");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    /// <summary>A run spec of the fixture DiT in this test's folder; <paramref name="output"/> relative to it or absolute.</summary>
    private string Spec(string name, long samples = 4, int shardSize = 2, int steps = 2, int seed = 5, string? output = null)
    {
        var path = P(name + ".json");
        string F(params string[] p) => Fixtures.Path(p).Replace("\\", "/");
        File.WriteAllText(path, $$"""
            {"name": "{{name}}", "model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{F("dit", "dit_tiny.pt")}}",
             "vae": "{{F("vae", "vae_tiny")}}", "num_samples": {{samples}}, "seed": {{seed}}, "steps": {{steps}},
             "shard_size": {{shardSize}}, "batch_size": 2, "output": "{{(output ?? "out/" + name).Replace("\\", "/")}}"}
            """);
        return path;
    }

    private static string[] Run(string spec, params string[] more) => ["run", "--config", spec, "--workers", "1", "--threads", "1", .. more];

    private string DefaultLedger => P("out", Ledgers.DefaultSqliteFileName);

    private static void Sql(string sqlitePath, string sql)
    {
        using (var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = sqlitePath, Pooling = false }.ToString()))
        {
            c.Open();
            using var command = c.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }
    }

    private static string[] TempFiles(string dir) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, "*.tmp-*", SearchOption.AllDirectories) : [];

    // ---- 1: names from the ledger stay in the output directory ----

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_ledger_row_naming_a_file_outside_the_output_is_refused_by_merge_run_and_worker(bool absolute)
    {
        string spec = Spec("t");
        var first = CliProcess.Run(Run(spec));
        Assert.True(first.ExitCode == 0, first.Stderr);
        string victim = absolute ? P("elsewhere", "victim") : P("out", "victim");
        Directory.CreateDirectory(Path.GetDirectoryName(victim)!);
        File.WriteAllText(victim, "precious");
        string name = absolute ? victim : "../victim";
        Sql(DefaultLedger, $"UPDATE shards SET file = '{name}' WHERE idx = 0");
        string samples = P("out", "t", "samples.npz");
        var before = File.ReadAllBytes(samples);

        foreach (var args in new[]
                 {
                     new[] { "merge", "--run", P("out", "t") },
                     Run(spec),
                     new[] { "worker", "--ledger", "sqlite:" + DefaultLedger, "--threads", "1" },
                 })
        {
            var r = CliProcess.Run(args);
            Assert.True(r.ExitCode == 1, $"{args[0]}: exit {r.ExitCode}\n{r.Stderr}");
            Assert.Contains($"shard 0 of run", r.Stderr);
            Assert.Contains($"'{name}'", r.Stderr);
            Assert.Contains(DefaultLedger, r.Stderr);
            Assert.Equal("precious", File.ReadAllText(victim));
            Assert.Equal(before, File.ReadAllBytes(samples));
        }
        // A worker can never record such a name either.
        Assert.Empty(TempFiles(_dir.FullName));
    }

    // ---- 3 and 5: one output directory, one run ----

    [Fact]
    public async Task A_second_run_in_the_same_output_directory_is_refused_before_it_writes()
    {
        var first = CliProcess.Run(Run(Spec("t")));
        Assert.True(first.ExitCode == 0, first.Stderr);
        string firstId = (await Runs(DefaultLedger)).Single().RunId;
        var files = Snapshot(P("out", "t"));

        // Other settings (another seed), same output, same ledger.
        var other = CliProcess.Run(Run(Spec("other", seed: 6, output: "out/t")));
        Assert.True(other.ExitCode == 1, other.Stderr);
        Assert.Contains(P("out", "t"), other.Stderr);
        Assert.Contains(firstId, other.Stderr);
        Assert.Single(await Runs(DefaultLedger));
        Assert.Equal(files, Snapshot(P("out", "t")));

        // The same, with a ledger of its own: refused by the run.json already there, and that ledger is not created.
        string elsewhere = P("second", "ledger.sqlite");
        var separate = CliProcess.Run(Run(Spec("other2", seed: 7, output: "out/t"), "--ledger", "sqlite:" + elsewhere));
        Assert.True(separate.ExitCode == 1, separate.Stderr);
        Assert.Contains(P("out", "t"), separate.Stderr);
        Assert.Contains(firstId, separate.Stderr);
        Assert.False(File.Exists(elsewhere), "the refused run left a ledger behind");
        Assert.Equal(files, Snapshot(P("out", "t")));

        // The first run itself still resumes.
        var again = CliProcess.Run(Run(Spec("t")));
        Assert.True(again.ExitCode == 0, again.Stderr);
    }

    [Fact]
    public void An_output_that_is_a_file_is_refused_and_leaves_no_ledger()
    {
        Directory.CreateDirectory(P("out"));
        File.WriteAllText(P("out", "t"), "not a directory");
        var r = CliProcess.Run(Run(Spec("t")));
        Assert.True(r.ExitCode == 1, r.Stderr);
        Assert.Contains(P("out", "t"), r.Stderr);
        Assert.Contains("is a file", r.Stderr);
        Assert.False(File.Exists(DefaultLedger), "the refused run left ledger.sqlite behind");
        Assert.Equal("not a directory", File.ReadAllText(P("out", "t")));
    }

    [Fact]
    public async Task A_different_run_known_only_to_the_ledger_is_refused_before_run_json_is_written()
    {
        // run.json is gone, so only the ledger knows which run the directory holds: the check there refuses as well.
        var first = CliProcess.Run(Run(Spec("t")));
        Assert.True(first.ExitCode == 0, first.Stderr);
        File.Delete(P("out", "t", "run.json")); // only the ledger knows the run now
        var other = CliProcess.Run(Run(Spec("other", seed: 9, output: "out/t")));
        Assert.True(other.ExitCode == 1, other.Stderr);
        Assert.Contains("already holds run", other.Stderr);
        Assert.Single(await Runs(DefaultLedger));
        Assert.False(File.Exists(P("out", "t", "run.json")), "the refused run wrote run.json");
    }

    // ---- 4: permanent ledger errors are not waited on ----

    [Theory]
    [InlineData("DROP TABLE shards", "no such table: shards", "run")]
    [InlineData("DROP TABLE workers", "no such table: workers", "worker")]
    [InlineData("UPDATE schema_version SET version = 99", "schema version 99", "run")]
    [InlineData("UPDATE schema_version SET version = 99", "schema version 99", "worker")]
    public async Task A_broken_ledger_is_an_environment_error_at_once(string damage, string expected, string verb)
    {
        string ledger = P("l.sqlite");
        await using (await Ledgers.OpenAsync("sqlite:" + ledger)) { }
        SqliteConnection.ClearAllPools();
        Sql(ledger, damage);
        var clock = Stopwatch.StartNew();
        var r = verb == "run"
            ? CliProcess.Run(Run(Spec("t"), "--ledger", "sqlite:" + ledger, "--ledger-patience", "120"))
            : CliProcess.Run("worker", "--ledger", "sqlite:" + ledger, "--threads", "1", "--ledger-patience", "120");
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed.TotalSeconds:F0} s: retried as an outage?\n{r.Stderr}");
        Assert.Contains(ledger, r.Stderr);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("retrying", r.Stderr);
    }

    // ---- 2: huge runs and signals ----

    [Theory]
    [InlineData(1_000_000_000_000L, 1000)]
    [InlineData(1_000_000_000_000L, 1)]
    public void A_huge_run_is_refused_fast_naming_the_spec_and_the_limit(long samples, int shardSize)
    {
        string spec = Spec("huge", samples, shardSize);
        var clock = Stopwatch.StartNew();
        var r = CliProcess.Run(Run(spec));
        Assert.True(r.ExitCode == 1, r.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed.TotalSeconds:F0} s");
        Assert.Contains(spec, r.Stderr);
        Assert.Contains("100000 ", r.Stderr);
        Assert.Contains("shard_size", r.Stderr);
        Assert.False(File.Exists(DefaultLedger), "a refused run left ledger.sqlite behind");
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("HUP")]
    [InlineData("INT")]
    public async Task A_signal_while_generating_stops_the_run_with_130_and_leaves_nothing_half_written(string signal)
    {
        string spec = Spec("sig", samples: 40, shardSize: 2, steps: 40);
        using var run = Started.Start(Run(spec, "--lease-seconds", "30"));
        Assert.True(await run.WaitForLine("samples ", TimeSpan.FromSeconds(60)), "the run never started generating:\n" + run.Stderr);
        // Mid-generation: some shards done, one leased to a worker.
        await WaitFor(async () => (await Shards(DefaultLedger)) is var s && s.Any(x => x.State == ShardState.Done) && s.Any(x => x.State == ShardState.Leased),
            TimeSpan.FromSeconds(60));
        Assert.False(run.Process.HasExited, run.Stderr);
        run.Signal(signal);
        Assert.True(run.WaitForExit(60_000), "the run did not stop within 60 s of SIG" + signal + "\n" + run.Stderr);
        Assert.True(run.Process.ExitCode == 130, $"exit {run.Process.ExitCode}\n{run.Stderr}");
        Assert.Contains("interrupted", run.Stderr);
        Assert.Empty(TempFiles(_dir.FullName));
        Assert.False(File.Exists(P("out", "sig", "samples.npz")));
        SqliteConnection.ClearAllPools();
        await using var ledger = await Ledgers.OpenAsync("sqlite:" + DefaultLedger);
        Assert.DoesNotContain(await ledger.GetShardsAsync((await ledger.ListRunsAsync()).Single().RunId), s => s.State == ShardState.Leased);
        foreach (var w in await ledger.GetWorkersAsync()) Assert.False(RunFaultTests.Alive(w.ProcessId), $"worker pid {w.ProcessId} outlived the run");
    }

    [Fact]
    public async Task A_signal_while_a_big_run_is_planned_stops_with_130_and_plans_all_or_nothing()
    {
        string spec = Spec("plan", samples: 100_000, shardSize: 1); // the most shards a run may have: seconds of planning
        using var run = Started.Start(Run(spec));
        Assert.True(await run.WaitForLine("ledger:", TimeSpan.FromSeconds(60)), run.Stderr);
        await Task.Delay(300);
        var clock = Stopwatch.StartNew();
        run.Signal("TERM");
        Assert.True(run.WaitForExit(60_000), "the run did not stop within 60 s of SIGTERM\n" + run.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"stopped {clock.Elapsed.TotalSeconds:F1} s after SIGTERM");
        Assert.True(run.Process.ExitCode == 130, $"exit {run.Process.ExitCode}\n{run.Stderr}");
        Assert.Empty(TempFiles(_dir.FullName));
        SqliteConnection.ClearAllPools();
        if (!File.Exists(DefaultLedger)) return;
        foreach (var r in await Runs(DefaultLedger)) Assert.Equal(r.ShardCount, (await Shards(DefaultLedger)).Count);
    }

    // ---- 6: PostgreSQL refusing connections at start-up ----

    [Fact]
    public void A_refused_postgres_connection_at_start_is_retried_for_the_patience_then_exit_3()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        string url = $"postgres://alice:s3cret@127.0.0.1:{port}/ledger";
        foreach (var args in new[] { new[] { "worker", "--ledger", url, "--threads", "1", "--ledger-patience", "4" }, Run(Spec("t"), "--ledger", url, "--ledger-patience", "4") })
        {
            var clock = Stopwatch.StartNew();
            var r = CliProcess.Run(args);
            var took = clock.Elapsed;
            Assert.True(r.ExitCode == 3, $"{args[0]}: exit {r.ExitCode}\n{r.Stderr}");
            Assert.True(took >= TimeSpan.FromSeconds(4) && took < TimeSpan.FromSeconds(40), $"{args[0]} gave up after {took.TotalSeconds:F1} s\n{r.Stderr}");
            Assert.Contains("ledger unavailable", r.Stderr);
            Assert.Contains("did not answer for 4 s", r.Stderr);
            Assert.Contains($"127.0.0.1:{port}", r.Stderr);
            Assert.DoesNotContain("s3cret", r.Stderr);
        }
    }

    [Fact]
    public async Task A_worker_waiting_for_its_ledger_stops_on_sigterm_with_130()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var worker = Started.Start(["worker", "--ledger", $"postgres://alice@127.0.0.1:{port}/ledger", "--threads", "1", "--ledger-patience", "300"]);
        Assert.True(await worker.WaitForLine("ledger unavailable", TimeSpan.FromSeconds(60)), worker.Stderr);
        var clock = Stopwatch.StartNew();
        worker.Signal("TERM");
        Assert.True(worker.WaitForExit(30_000), "the worker kept waiting for its ledger after SIGTERM\n" + worker.Stderr);
        Assert.True(worker.Process.ExitCode == 130, $"exit {worker.Process.ExitCode}\n{worker.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"stopped {clock.Elapsed.TotalSeconds:F1} s after SIGTERM");
    }

    // ---- 10: a full output disk ----

    [Fact]
    public void A_full_output_disk_fails_run_and_worker_with_3_naming_the_path_and_leaves_no_temp()
    {
        using var disk = FullDisk.TryMount(64);
        if (disk == null) return;
        string output = Path.Combine(disk.Path, "f");
        string spec = Spec("f", samples: 8, shardSize: 8, output: output); // one 96 KiB shard on a 64 KiB disk
        string ledger = "sqlite:" + P("l.sqlite");
        var clock = Stopwatch.StartNew();
        var r = CliProcess.Run(Run(spec, "--ledger", ledger, "--ledger-patience", "120"));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed.TotalSeconds:F0} s");
        Assert.Contains("no space left on device", r.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(Path.Combine(output, "shard-0-7.npz"), r.Stderr); // on run's own console, not only in the worker's log
        Assert.Empty(TempFiles(disk.Path));

        var w = CliProcess.Run("worker", "--ledger", ledger, "--threads", "1", "--ledger-patience", "120");
        Assert.True(w.ExitCode == 3, $"exit {w.ExitCode}\n{w.Stderr}");
        Assert.Contains(Path.Combine(output, "shard-0-7.npz"), w.Stderr);
        Assert.Empty(TempFiles(disk.Path));
        Assert.False(File.Exists(Path.Combine(output, "shard-0-7.npz")));
    }

    [Fact]
    public void A_disk_that_fills_up_at_the_merge_fails_run_and_merge_with_3_naming_samples_npz()
    {
        using var disk = FullDisk.TryMount(64);
        if (disk == null) return;
        string output = Path.Combine(disk.Path, "m");
        string spec = Spec("m", samples: 4, shardSize: 2, output: output); // two 25 KiB shards fit, the 49 KiB merge does not
        string ledger = "sqlite:" + P("l.sqlite");
        var r = CliProcess.Run(Run(spec, "--ledger", ledger));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}");
        Assert.Contains(Path.Combine(output, "samples.npz") + ": no space left on device", r.Stderr);
        Assert.Empty(TempFiles(disk.Path));
        Assert.True(File.Exists(Path.Combine(output, "shard-0-1.npz")) && File.Exists(Path.Combine(output, "shard-2-3.npz")), "the shards were lost");

        var m = CliProcess.Run("merge", "--run", output, "--ledger", ledger);
        Assert.True(m.ExitCode == 3, $"exit {m.ExitCode}\n{m.Stderr}");
        Assert.Contains(Path.Combine(output, "samples.npz") + ": no space left on device", m.Stderr);
        Assert.Empty(TempFiles(disk.Path));
        Assert.False(File.Exists(Path.Combine(output, "samples.npz")));
    }

    [Fact]
    public void A_disk_full_before_the_run_starts_fails_it_with_3_naming_run_json()
    {
        using var disk = FullDisk.TryMount(64);
        if (disk == null) return;
        Fill(disk.Path);
        string output = Path.Combine(disk.Path, "p");
        var r = CliProcess.Run(Run(Spec("p", output: output), "--ledger", "sqlite:" + P("l.sqlite")));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}");
        Assert.Contains(Path.Combine(output, "run.json") + ": no space left on device", r.Stderr);
        Assert.Empty(TempFiles(disk.Path));
    }

    [Fact]
    public async Task A_full_disk_under_the_sqlite_ledger_is_exit_3_at_once_naming_the_ledger()
    {
        using var disk = FullDisk.TryMount(256);
        if (disk == null) return;
        string ledger = Path.Combine(disk.Path, "l.sqlite");
        await using (await Ledgers.OpenAsync("sqlite:" + ledger)) { }
        SqliteConnection.ClearAllPools();
        Fill(disk.Path);
        var clock = Stopwatch.StartNew();
        var r = CliProcess.Run(Run(Spec("t"), "--ledger", "sqlite:" + ledger, "--ledger-patience", "120"));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}\n{r.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed.TotalSeconds:F0} s: retried as an outage?\n{r.Stderr}");
        Assert.Contains(ledger, r.Stderr);
        Assert.Contains("full", r.Stderr);
        Assert.DoesNotContain("retrying", r.Stderr);
    }

    // ---- 8: merge's own inputs ----

    [Fact]
    public void Merge_names_a_corrupt_run_json_and_asks_for_a_missing_run_directory()
    {
        Directory.CreateDirectory(P("out", "t"));
        string runJson = P("out", "t", "run.json");
        File.WriteAllText(runJson, "{\"run_id\": ");
        var corrupt = CliProcess.Run("merge", "--run", P("out", "t"));
        Assert.True(corrupt.ExitCode == 1, corrupt.Stderr);
        Assert.Contains(runJson, corrupt.Stderr);
        Assert.Contains("not valid JSON", corrupt.Stderr);

        File.WriteAllText(runJson, "{\"ledger\": \"x\"}");
        var noId = CliProcess.Run("merge", "--run", P("out", "t"));
        Assert.True(noId.ExitCode == 1, noId.Stderr);
        Assert.Contains(runJson, noId.Stderr);
        Assert.Contains("run_id", noId.Stderr);

        var missing = CliProcess.RunWith([(Ledgers.EnvironmentVariable, "")], "merge", "--run", P("out", "gone"));
        Assert.True(missing.ExitCode == 1, missing.Stderr);
        Assert.Contains(P("out", "gone"), missing.Stderr);
        Assert.Contains("no such run directory", missing.Stderr);
        Assert.DoesNotContain("--ledger is required", missing.Stderr);

        var bareId = CliProcess.RunWith([(Ledgers.EnvironmentVariable, "")], "merge", "--run", "0123abcd");
        Assert.True(bareId.ExitCode == 2, bareId.Stderr);
        Assert.Contains("0123abcd", bareId.Stderr);
        Assert.Contains("output directory", bareId.Stderr);
    }

    // ---- 9: option values ----

    [Fact]
    public void Out_of_range_start_and_ledger_patience_are_usage_errors_naming_the_option()
    {
        var start = CliProcess.Run("sample", "--model", "m", "--checkpoint", "c", "--vae", "v", "--num-samples", "1", "-o", P("x.npz"),
            "--start", "99999999999999999999");
        Assert.Equal(2, start.ExitCode);
        Assert.Contains("--start", start.Stderr);
        foreach (var verb in new[] { Run(Spec("t"), "--ledger-patience", "-1"), ["worker", "--ledger", "sqlite:" + P("l.sqlite"), "--ledger-patience", "-1"] })
        {
            var r = CliProcess.Run(verb);
            Assert.True(r.ExitCode == 2, $"{verb[0]}: exit {r.ExitCode}\n{r.Stderr}");
            Assert.Contains("--ledger-patience", r.Stderr);
            Assert.False(File.Exists(P("l.sqlite")));
            Assert.False(File.Exists(DefaultLedger));
        }
    }

    // ---- helpers ----

    /// <summary>Fills the file system at <paramref name="dir"/> to its last byte (unbuffered, so closing cannot fail).</summary>
    private static void Fill(string dir)
    {
        using var f = new FileStream(Path.Combine(dir, "filler"), FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        var block = new byte[4096];
        try { while (true) f.Write(block); }
        catch (IOException) { }
        try { while (true) f.Write(block, 0, 1); }
        catch (IOException) { }
    }

    private static async Task<IReadOnlyList<RunRecord>> Runs(string sqlite)
    {
        await using var ledger = await Ledgers.OpenAsync("sqlite:" + sqlite);
        return await ledger.ListRunsAsync();
    }

    private static async Task<IReadOnlyList<ShardRecord>> Shards(string sqlite)
    {
        if (!File.Exists(sqlite)) return [];
        await using var ledger = await Ledgers.OpenAsync("sqlite:" + sqlite);
        var runs = await ledger.ListRunsAsync();
        return runs.Count == 0 ? [] : await ledger.GetShardsAsync(runs[^1].RunId);
    }

    private static SortedDictionary<string, (long, DateTime)> Snapshot(string dir) =>
        new(Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => !f.Contains(Path.DirectorySeparatorChar + "logs" + Path.DirectorySeparatorChar))
            .ToDictionary(f => f, f => (new FileInfo(f).Length, File.GetLastWriteTimeUtc(f))), StringComparer.Ordinal);

    private static async Task WaitFor(Func<Task<bool>> condition, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > limit) throw new TimeoutException($"condition not met within {limit}");
            await Task.Delay(200);
        }
    }

    /// <summary>A <c>dydit-eval</c> process whose stderr is read line by line as it comes.</summary>
    private sealed class Started : IDisposable
    {
        private readonly ConcurrentQueue<string> _lines = new();

        private Started(Process process) => Process = process;

        public Process Process { get; }

        public string Stderr => string.Join("\n", _lines);

        public static Started Start(string[] args)
        {
            var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll"), .. args])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment["NO_COLOR"] = "1";
            var p = new Process { StartInfo = psi };
            var started = new Started(p);
            p.ErrorDataReceived += (_, e) => { if (e.Data != null) started._lines.Enqueue(e.Data); };
            p.OutputDataReceived += (_, _) => { };
            p.Start();
            p.BeginErrorReadLine();
            p.BeginOutputReadLine();
            return started;
        }

        public async Task<bool> WaitForLine(string text, TimeSpan limit)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < limit && !Process.HasExited)
            {
                if (_lines.Any(l => l.Contains(text, StringComparison.Ordinal))) return true;
                await Task.Delay(50);
            }
            return _lines.Any(l => l.Contains(text, StringComparison.Ordinal));
        }

        /// <summary>Waits for the exit and then for the last lines of stderr (delivered asynchronously).</summary>
        public bool WaitForExit(int milliseconds)
        {
            if (!Process.WaitForExit(milliseconds)) return false;
            Process.WaitForExit();
            return true;
        }

        public void Signal(string name)
        {
            using var kill = Process.Start("kill", ["-" + name, Process.Id.ToString(CultureInfo.InvariantCulture)])!;
            kill.WaitForExit();
        }

        public void Dispose()
        {
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
            Process.Dispose();
        }
    }
}

/// <summary>Issue 15: a PostgreSQL ledger that comes up after its worker is waited for within <c>--ledger-patience</c>.</summary>
[Collection(CliPostgresCollection.Name)]
public sealed class PostgresStartupTests(PostgresServer server)
{
    [PostgresFact]
    public async Task A_worker_started_before_its_ledger_waits_for_it_within_the_patience()
    {
        string database = await server.CreateDatabaseAsync();
        await server.StopAsync();
        try
        {
            var psi = new ProcessStartInfo("dotnet",
                [Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll"), "worker", "--ledger", server.Url(database), "--threads", "1", "--ledger-patience", "90"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var worker = Process.Start(psi)!;
            var stderr = worker.StandardError.ReadToEndAsync();
            var stdout = worker.StandardOutput.ReadToEndAsync();
            await Task.Delay(TimeSpan.FromSeconds(4));
            Assert.False(worker.HasExited, "the worker gave up while the ledger was still starting:\n" + (worker.HasExited ? await stderr : ""));
            await server.StartAsync();
            if (!worker.WaitForExit(90_000))
            {
                worker.Kill(entireProcessTree: true);
                Assert.Fail("the worker did not finish within 90 s of the ledger starting");
            }
            _ = await stdout;
            string err = await stderr;
            Assert.True(worker.ExitCode == 0, $"exit {worker.ExitCode}\n{err}");
            Assert.Contains("ledger unavailable", err);
            Assert.Contains("no work left", err);
        }
        finally
        {
            if (!server.IsRunning) await server.StartAsync();
            await server.DropDatabaseAsync(database);
        }
    }
}
