using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// Issue 7's fault tests, end to end through the real binary: <c>dydit-eval run</c> with local worker processes on the
/// fixture DiT and VAE (160 samples in 10-sample shards, 40 steps, cfg 1.5). Whatever happens to the workers, the run
/// process or the shard files, the merged <c>samples.npz</c> must have the sha256 of a 1-worker run without faults — and
/// that run's arrays must equal what <c>dydit-eval sample</c> makes in one process (an independent code path: no ledger,
/// no shards). Each test runs on SQLite here and on a throw-away PostgreSQL server in <see cref="PostgresRunFaultTests"/>.
/// </summary>
public abstract class RunFaultTests : IDisposable
{
    protected const int Samples = 160, ShardSize = 10, Steps = 40;
    private readonly ITestOutputHelper _output;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-run-");
    private readonly Random _random = new(20261130);

    protected RunFaultTests(ITestOutputHelper output) => _output = output;

    /// <summary>The ledger location for <c>--ledger</c>, or null for the default SQLite file next to the output.</summary>
    protected abstract string? LedgerLocation { get; }

    public virtual void Dispose() => _dir.Delete(recursive: true);

    protected string Spec(string name) => WriteSpec(_dir.FullName, name);

    private static string WriteSpec(string dir, string name)
    {
        var path = Path.Combine(dir, name + ".json");
        string F(params string[] p) => Fixtures.Path(p).Replace("\\", "/");
        File.WriteAllText(path, $$"""
            {"name": "{{name}}", "model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{F("dit", "dit_tiny.pt")}}",
             "vae": "{{F("vae", "vae_tiny")}}", "num_samples": {{Samples}}, "seed": 5, "cfg_scale": 1.5, "steps": {{Steps}},
             "shard_size": {{ShardSize}}, "batch_size": 5, "output": "out/{{name}}"}
            """);
        return path;
    }

    protected string Output(string name) => Path.Combine(_dir.FullName, "out", name);

    private string Ledger => LedgerLocation ?? "sqlite:" + Path.Combine(_dir.FullName, "out", Ledgers.DefaultSqliteFileName);

    protected string[] RunArgs(string spec, int workers, double lease = 2) =>
    [
        "run", "--config", spec, "--workers", workers.ToString(CultureInfo.InvariantCulture), "--threads", "1",
        "--lease-seconds", lease.ToString(CultureInfo.InvariantCulture), .. LedgerLocation is { } l ? new[] { "--ledger", l } : [],
    ];

    /// <summary>
    /// The 1-worker, fault-free run (its own directory and SQLite ledger, made once per test process), checked against
    /// <c>dydit-eval sample</c>.
    /// </summary>
    private static string Baseline() => BaselineSha.Value;


    protected static readonly Lazy<string> BaselineSha = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("dydit-run-baseline-");
        try
        {
            var spec = WriteSpec(dir.FullName, "baseline");
            var r = CliProcess.Run("run", "--config", spec, "--workers", "1", "--threads", "1");
            Assert.True(r.ExitCode == 0, r.Stderr);
            var merged = Path.Combine(dir.FullName, "out", "baseline", "samples.npz");
            var direct = Path.Combine(dir.FullName, "direct.npz");
            var s = CliProcess.Run("sample", "--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"),
                "--vae", Fixtures.Path("vae", "vae_tiny"), "--num-samples", $"{Samples}", "--seed", "5", "--cfg-scale", "1.5", "--steps", $"{Steps}",
                "--batch-size", "7", "--threads", "1", "-o", direct);
            Assert.True(s.ExitCode == 0, s.Stderr);
            using (var a = NpzArchive.Open(merged))
            using (var b = NpzArchive.Open(direct))
            {
                Assert.Equal(["arr_0", "labels"], a.Arrays.Select(x => x.Name));
                Assert.Equal([Samples, 64, 64, 3], a["arr_0"].Shape);
                Assert.Equal(b["arr_0"].ReadAllBytes(), a["arr_0"].ReadAllBytes());
                Assert.Equal(b["labels"].ReadAllBytes(), a["labels"].ReadAllBytes());
            }
            return Sha(merged);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    });

    protected static string Sha(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    protected sealed class Running(Process process, Task<string> stdout, Task<string> stderr)
    {
        public Process Process { get; } = process;

        public (int Code, string Stderr) Wait(TimeSpan timeout)
        {
            if (!Process.WaitForExit(timeout))
            {
                Process.Kill(entireProcessTree: true);
                throw new TimeoutException($"dydit-eval run did not finish in {timeout}; stderr:\n{stderr.Result}");
            }
            Process.WaitForExit();
            _ = stdout.Result;
            return (Process.ExitCode, stderr.Result);
        }
    }

    protected static Running Start(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll"), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["NO_COLOR"] = "1";
        var p = Process.Start(psi)!;
        return new Running(p, p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync());
    }

    protected async Task<(IReadOnlyList<ShardRecord> Shards, IReadOnlyList<WorkerRecord> Workers, IReadOnlyList<LedgerEvent> Events)> Look()
    {
        if (LedgerLocation == null && !File.Exists(Ledgers.SqlitePath(Ledger))) return ([], [], []);
        await using var ledger = await Ledgers.OpenAsync(Ledger);
        var runs = await ledger.ListRunsAsync();
        if (runs.Count == 0) return ([], [], []);
        var run = runs[^1];
        return (await ledger.GetShardsAsync(run.RunId), await ledger.GetWorkersAsync(), await ledger.GetEventsAsync(run.RunId));
    }

    /// <summary>Whether process <paramref name="pid"/> still runs.</summary>
    internal static bool Alive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// The same spec run with 1, 2 and 3 workers and default flags (so each worker's thread count is cores / workers)
    /// merges to the baseline's sha256, which was made with one single-threaded worker.
    /// </summary>
    /// <summary>
    /// A worker whose numerics identity differs from the run's is refused with both identities named, and the run still
    /// ends with the baseline's bytes. The worker is forced to another CPU kernel family by turning off the wide vector
    /// paths (.NET's DOTNET_EnableAVX512F/AVX2 switches: TensorPrimitives then runs 128-bit code that rounds differently).
    /// </summary>
    protected async Task AWorkerOfOtherNumericsIsRefusedCore()
    {
        string expected = Baseline();
        var run = Start(RunArgs(Spec("numerics"), workers: 1));
        var clock = Stopwatch.StartNew();
        while ((await Look()).Shards.Count == 0 && clock.Elapsed < TimeSpan.FromSeconds(60) && !run.Process.HasExited) await Task.Delay(200);
        Assert.False(run.Process.HasExited, "the run ended before a second worker could join");
        var stranger = CliProcess.RunWith([("DOTNET_EnableAVX512F", "0"), ("DOTNET_EnableAVX2", "0")],
            "worker", "--ledger", Ledger, "--threads", "1", "--max-shards", "1", "--ledger-patience", "30");
        var (code, stderr) = run.Wait(TimeSpan.FromSeconds(180));
        Assert.True(code == 0, stderr);
        Assert.True(stranger.ExitCode == 1, $"the stranger worker exited {stranger.ExitCode}: {stranger.Stderr}");
        Assert.Matches("planned for cpu-fp32-[a-z0-9]+-v(512|256) numerics but this worker computes with cpu-fp32-[a-z0-9]+-v128", stranger.Stderr);
        Assert.Equal(expected, Sha(Path.Combine(Output("numerics"), "samples.npz")));
    }

    /// <summary>An empty ledger of this test's kind, other than <see cref="LedgerLocation"/>.</summary>
    protected virtual string FreshLedger() => "sqlite:" + Path.Combine(_dir.FullName, Guid.NewGuid().ToString("N")[..8] + ".sqlite");

    protected void WorkerCountDoesNotChangeTheBytesCore()
    {
        string expected = Baseline();
        foreach (int workers in new[] { 1, 2, 3 })
        {
            string name = $"workers{workers}";
            // a ledger of its own per run: one ledger refuses a second copy of the same run in another directory
            var r = CliProcess.Run("run", "--config", Spec(name), "--workers", workers.ToString(CultureInfo.InvariantCulture),
                "--ledger", FreshLedger());
            Assert.True(r.ExitCode == 0, $"--workers {workers}: exit {r.ExitCode}: {r.Stderr}");
            Assert.True(expected == Sha(Path.Combine(Output(name), "samples.npz")),
                $"--workers {workers} with default threads merged to other bytes than one single-threaded worker");
        }
    }

    protected async Task KilledWorkersDoNotChangeTheOutputCore()
    {
        string expected = Baseline();
        var run = Start(RunArgs(Spec("faults"), workers: 3));
        int kills = 0;
        var killedHolding = new HashSet<string>();
        var clock = Stopwatch.StartNew();
        while (kills < 4 && !run.Process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            await Task.Delay(_random.Next(600, 1600));
            var (shards, workers, _) = await Look();
            // A worker that holds a lease right now, so the kill strands a shard that must be re-leased.
            var holding = shards.Where(s => s.State == ShardState.Leased && s.WorkerId != null).Select(s => s.WorkerId!).ToHashSet();
            var victims = workers.Where(w => holding.Contains(w.WorkerId) && w.Host == Environment.MachineName && Alive(w.ProcessId)).ToArray();
            if (victims.Length == 0) continue;
            var victim = victims[_random.Next(victims.Length)];
            using (var p = Process.GetProcessById(victim.ProcessId)) p.Kill(); // SIGKILL: no goodbye, no abandon
            killedHolding.Add(victim.WorkerId);
            kills++;
            _output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: killed {victim.WorkerId} (pid {victim.ProcessId})");
        }
        var (code, stderr) = run.Wait(TimeSpan.FromSeconds(180));
        Assert.True(code == 0, stderr);
        Assert.True(kills >= 2, $"only {kills} kill(s) landed while the run was going; stderr:\n{stderr}");
        Assert.Equal(expected, Sha(Path.Combine(Output("faults"), "samples.npz")));
        var (final, _, events) = await Look();
        Assert.All(final, s => Assert.Equal(ShardState.Done, s.State));
        var released = events.Where(e => e.Kind == LedgerEventKind.Released).ToArray();
        Assert.True(released.Length >= kills, $"{kills} workers were killed holding a lease, {released.Length} Released event(s)");
        Assert.All(released, e => Assert.Contains(killedHolding, k => e.Detail!.Contains(k)));
        Assert.Contains("re-leased shards", stderr);
    }

    protected async Task KilledRunResumesAndKeepsFinishedShardsCore()
    {
        string expected = Baseline();
        string spec = Spec("resume");
        var first = Start(RunArgs(spec, workers: 2));
        var clock = Stopwatch.StartNew();
        IReadOnlyList<ShardRecord> before = [];
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(300);
            before = (await Look()).Shards;
            if (before.Count(s => s.State == ShardState.Done) >= 4) break;
        }
        first.Process.Kill(); // the run process only (SIGKILL); its workers notice their parent is gone
        first.Process.WaitForExit();
        var doneBefore = before.Where(s => s.State == ShardState.Done).Select(s => s.Index).ToArray();
        Assert.True(doneBefore.Length >= 4 && doneBefore.Length < Samples / ShardSize, $"{doneBefore.Length} shards were done at the kill");

        var second = CliProcess.Run(RunArgs(spec, workers: 2));
        Assert.True(second.ExitCode == 0, second.Stderr);
        Assert.Contains("resuming", second.Stderr);
        Assert.Equal(expected, Sha(Path.Combine(Output("resume"), "samples.npz")));
        var (_, _, events) = await Look();
        foreach (int index in doneBefore) // finished shards were verified and kept, never claimed again
            Assert.Single(events, e => e.Kind == LedgerEventKind.Claimed && e.ShardIndex == index);
    }

    protected async Task CorruptedShardIsDetectedAndRegeneratedCore()
    {
        string expected = Baseline();
        string spec = Spec("corrupt");
        var r = CliProcess.Run(RunArgs(spec, workers: 2));
        Assert.True(r.ExitCode == 0, r.Stderr);
        string shard = Path.Combine(Output("corrupt"), "shard-30-39.npz");
        var bytes = File.ReadAllBytes(shard);
        for (int i = 0; i < 16; i++) bytes[bytes.Length / 2 + i] ^= 0x5A; // pixels, not the zip structure: only sha256 can tell
        File.WriteAllBytes(shard, bytes);

        string[] mergeArgs = ["merge", "--run", Output("corrupt"), .. LedgerLocation is { } l ? new[] { "--ledger", l } : []];
        var merge = CliProcess.Run(mergeArgs);
        Assert.Equal(1, merge.ExitCode);
        Assert.Contains("shard-30-39.npz", merge.Stderr);
        var (shards, _, events) = await Look();
        Assert.Equal(ShardState.Pending, shards.Single(s => s.Index == 3).State);
        Assert.Contains(events, e => e.Kind == LedgerEventKind.Reset && e.ShardIndex == 3);

        var again = CliProcess.Run(RunArgs(spec, workers: 2));
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Equal(expected, Sha(Path.Combine(Output("corrupt"), "samples.npz")));
        Assert.Equal(2, (await Look()).Events.Count(e => e.Kind == LedgerEventKind.Claimed && e.ShardIndex == 3));

        // Corrupted after a finished run and found by `run` itself on resume.
        File.WriteAllBytes(shard, bytes);
        var third = CliProcess.Run(RunArgs(spec, workers: 1));
        Assert.True(third.ExitCode == 0, third.Stderr);
        Assert.Contains("failed verification", third.Stderr);
        Assert.Equal(expected, Sha(Path.Combine(Output("corrupt"), "samples.npz")));
    }
}

/// <summary>The fault tests on the default SQLite ledger (worker processes on one host).</summary>
public sealed class SqliteRunFaultTests(ITestOutputHelper output) : RunFaultTests(output)
{
    protected override string? LedgerLocation => null;

    [Fact]
    public Task KilledWorkersDoNotChangeTheOutput() => KilledWorkersDoNotChangeTheOutputCore();

    [Fact]
    public Task KilledRunResumesAndKeepsFinishedShards() => KilledRunResumesAndKeepsFinishedShardsCore();

    [Fact]
    public Task CorruptedShardIsDetectedAndRegenerated() => CorruptedShardIsDetectedAndRegeneratedCore();

    [Fact]
    public void WorkerCountDoesNotChangeTheBytes() => WorkerCountDoesNotChangeTheBytesCore();

    [Fact]
    public Task AWorkerOfOtherNumericsIsRefused() => AWorkerOfOtherNumericsIsRefusedCore();
}

/// <summary>
/// A worker told to stop (SIGTERM, as Slurm and <c>run</c> do) gives its shard back, leaves no partial file and exits
/// with 130; a worker asked for a GPU this build cannot drive exits with 3.
/// </summary>
public sealed class WorkerSignalTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-worker-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task SigtermGivesTheShardBackAndLeavesNoPartialFile()
    {
        var spec = Path.Combine(_dir.FullName, "w.json");
        string F(params string[] p) => Fixtures.Path(p);
        File.WriteAllText(spec, $$"""
            {"name": "w", "model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{F("dit", "dit_tiny.pt")}}", "vae": "{{F("vae", "vae_tiny")}}",
             "num_samples": 400, "steps": 1000, "shard_size": 200, "batch_size": 4, "output": "out"}
            """);
        string location = "sqlite:" + Path.Combine(_dir.FullName, "ledger.sqlite");
        RunRecord run;
        await using (var ledger = await Ledgers.OpenAsync(location))
            run = await DyDiT.Eval.Cluster.Work.RunPlanner.PlanAsync(ledger, DyDiT.Eval.Cluster.Specs.RunSpec.Load(spec) with { Numerics = DyDiT.Eval.Cluster.Specs.RunNumerics.Cpu },
                new LedgerRetry(TimeSpan.FromSeconds(30)), CancellationToken.None);

        var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll"), "worker", "--ledger", location, "--threads", "1"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var worker = Process.Start(psi)!;
        var stderr = worker.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        ShardRecord? held = null;
        while (held == null && clock.Elapsed < TimeSpan.FromSeconds(30) && !worker.HasExited)
        {
            await Task.Delay(200);
            await using var ledger = await Ledgers.OpenAsync(location);
            held = (await ledger.GetShardsAsync(run.RunId)).FirstOrDefault(s => s.State == ShardState.Leased && s.SamplesDone > 0);
        }
        Assert.NotNull(held);
        using (var kill = Process.Start("kill", ["-TERM", worker.Id.ToString(CultureInfo.InvariantCulture)])) kill.WaitForExit();
        Assert.True(worker.WaitForExit(30_000), "the worker did not stop within 30 s of SIGTERM");
        Assert.Equal(130, worker.ExitCode);
        Assert.Contains("given back", await stderr);
        await using (var ledger = await Ledgers.OpenAsync(location))
        {
            Assert.Equal(ShardState.Pending, (await ledger.GetShardsAsync(run.RunId)).Single(s => s.Index == held.Index).State);
            Assert.Contains(await ledger.GetEventsAsync(run.RunId), e => e.Kind == LedgerEventKind.Abandoned && e.ShardIndex == held.Index);
        }
        Assert.Empty(Directory.GetFiles(run.OutputDirectory, "*.npz*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(run.OutputDirectory, ".*tmp*", SearchOption.AllDirectories));
    }

    [Fact]
    public void CudaDeviceWithoutADriverIsAnEnvironmentError()
    {
        if (Engine.Backends.Cuda.CudaProbe.Run().Problem == null) return; // this machine has a usable GPU
        var r = CliProcess.Run("worker", "--ledger", "sqlite:" + Path.Combine(_dir.FullName, "l.sqlite"), "--device", "cuda:0");
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("libcuda", r.Stderr);
    }
}

/// <summary>One throw-away PostgreSQL server for the CLI's ledger tests.</summary>
[CollectionDefinition(Name)]
public sealed class CliPostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "CLI PostgreSQL";
}

/// <summary>
/// The fault tests on PostgreSQL (a fresh database per test, passed as a <c>postgres://</c> URL), plus the outage test:
/// the server stopped for some seconds mid-run and started again.
/// </summary>
[Collection(CliPostgresCollection.Name)]
public sealed class PostgresRunFaultTests : RunFaultTests
{
    private readonly PostgresServer _server;
    private readonly string? _database;

    public PostgresRunFaultTests(PostgresServer server, ITestOutputHelper output) : base(output)
    {
        _server = server;
        if (PostgresServer.SkipReason == null) _database = server.CreateDatabaseAsync().GetAwaiter().GetResult();
    }

    protected override string? LedgerLocation => _database == null ? null : _server.Url(_database);

    private readonly List<string> _extraDatabases = [];

    protected override string FreshLedger()
    {
        var name = _server.CreateDatabaseAsync().GetAwaiter().GetResult();
        _extraDatabases.Add(name);
        return _server.Url(name);
    }

    public override void Dispose()
    {
        if (_database != null && _server.IsRunning) _server.DropDatabaseAsync(_database).GetAwaiter().GetResult();
        foreach (var extra in _extraDatabases)
            if (_server.IsRunning) _server.DropDatabaseAsync(extra).GetAwaiter().GetResult();
        base.Dispose();
    }

    [PostgresFact]
    public Task KilledWorkersDoNotChangeTheOutput() => KilledWorkersDoNotChangeTheOutputCore();

    [PostgresFact]
    public Task KilledRunResumesAndKeepsFinishedShards() => KilledRunResumesAndKeepsFinishedShardsCore();

    [PostgresFact]
    public Task CorruptedShardIsDetectedAndRegenerated() => CorruptedShardIsDetectedAndRegeneratedCore();

    [PostgresFact]
    public void WorkerCountDoesNotChangeTheBytes() => WorkerCountDoesNotChangeTheBytesCore();

    [PostgresFact]
    public async Task LedgerOutageMidRunOnlyPausesTheRun()
    {
        string expected = BaselineSha.Value;
        var run = Start(RunArgs(Spec("outage"), workers: 3));
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && !run.Process.HasExited)
        {
            await Task.Delay(300);
            if ((await Look()).Shards.Count(s => s.State == ShardState.Done) >= 3) break;
        }
        Assert.False(run.Process.HasExited, "the run finished before the outage could start");
        await _server.StopAsync(immediate: true);
        await Task.Delay(TimeSpan.FromSeconds(6));
        Assert.False(run.Process.HasExited, "the run gave up while the ledger was down");
        await _server.StartAsync();
        var (code, stderr) = run.Wait(TimeSpan.FromSeconds(180));
        Assert.True(code == 0, stderr);
        Assert.Equal(expected, Sha(Path.Combine(Output("outage"), "samples.npz")));
        Assert.Contains("ledger unavailable", stderr);
        Assert.All((await Look()).Shards, s => Assert.Equal(ShardState.Done, s.State));
    }
}
