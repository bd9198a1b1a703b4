using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Merge;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Evaluation.Metrics;
using DyDiT.Eval.Evaluation.Reports;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval run --config RUN.json [--config …] [--workers N | --devices cuda:0,cuda:1,…] [--precision tf32] [--ledger URL]</c>: the main job. Plans each run's shards
/// in the ledger (once: a re-run resumes, keeping every finished shard whose sha256 still matches), keeps N local workers
/// (one per device; default one per visible GPU, else one CPU worker) busy until every shard is done (restarting any that die), shows one live progress view, merges each run's shards
/// into <c>samples.npz</c>, and, with Inception weights and a reference batch in the spec, evaluates the run from its
/// per-shard features into <c>metrics.json</c>. Several runs given together share the ledger and the pool of workers.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var configs = new Option<string[]>("--config")
        {
            Description = "Run spec JSON (see configs/; repeat to run several models with one pool of workers)",
            Required = true,
        };
        var workers = new Option<int?>("--workers") { Description = "Local CPU worker processes (without --devices or --workers: one worker per visible GPU, else one CPU worker)" };
        var devices = new Option<string?>("--devices")
        {
            Description = "Comma-separated devices, one local worker each: cuda:0,cuda:1,… or cpu (default: every GPU `doctor` lists, else one cpu worker). " +
                          "All must compute with the same numerics (device kind, precision, GPU architecture): it is part of the run id",
        };
        var precision = DeviceOptions.PrecisionOption(DeviceOptions.SamplingPrecision);
        var ledger = LedgerOption.Create("ledger.sqlite next to the first run's output directory");
        var threads = new Option<int>("--threads") { Description = "CPU threads per worker (default: cores / workers)" };
        var lease = new Option<double>("--lease-seconds") { Description = "Shard lease length; a killed worker's shard returns to the pool after it", DefaultValueFactory = _ => 60 };
        var patience = LedgerOption.CreatePatience("Seconds to keep retrying an unreachable ledger (at start-up too) before giving up (exit 3)");
        var noEvaluate = new Option<bool>("--no-evaluate") { Description = "Stop after samples.npz even if the spec names Inception weights and a reference" };
        var command = new Command("run",
            "Generate, merge and evaluate whole runs: shards planned in a ledger (SQLite by default, PostgreSQL for several hosts), local workers " +
            "kept busy and restarted when they die, one live progress view, samples.npz in ADM's layout, metrics.json. Re-running the same command " +
            "resumes; the output does not depend on the number of workers or on crashes.")
        {
            configs, workers, devices, precision, ledger, threads, lease, patience, noEvaluate,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            // From the first moment: a stop while specs are read, weights hashed or shards planned exits 130 as well.
            using var signals = new StopSignals();
            var paths = parse.GetValue(configs) ?? [];
            if (paths.Length == 0) throw new UsageException("--config is required");
            var deviceList = WorkerDevices(parse.GetValue(workers), parse.GetValue(devices));
            int n = deviceList.Count;
            var p = DeviceOptions.Resolve(deviceList[0], parse.GetValue(precision), DeviceOptions.SamplingPrecision);
            string numerics = Numerics(deviceList, p);
            double leaseSeconds = parse.GetValue(lease);
            if (!(leaseSeconds >= 1)) throw new UsageException("--lease-seconds must be >= 1");
            var ledgerPatience = LedgerOption.Patience(parse.GetValue(patience));
            var specs = paths.SelectMany(RunSpec.LoadAll).Select(s => s with { Numerics = numerics }).ToArray();
            var outputs = specs.GroupBy(s => s.Output).FirstOrDefault(g => g.Count() > 1);
            if (outputs != null) throw new UsageException($"two runs write to the same output directory {outputs.Key}");
            string fallback = "sqlite:" + Path.Combine(Path.GetDirectoryName(specs[0].Output)!, Ledgers.DefaultSqliteFileName);
            string location = LedgerOption.Resolve(parse.GetValue(ledger), fallback);
            int cpuWorkers = Math.Max(1, deviceList.Count(d => DeviceSpec.Parse(d).Kind != DeviceKind.Cuda));
            int perWorker = parse.GetValue(threads) is > 0 and var t ? t : Math.Max(1, Environment.ProcessorCount / cpuWorkers);
            Console.Error.WriteLine($"workers: {string.Join(", ", deviceList)} ({Backends.PrecisionName(p)}, numerics {numerics})");
            var settings = new Settings(deviceList, p, perWorker, TimeSpan.FromSeconds(leaseSeconds), ledgerPatience, !parse.GetValue(noEvaluate));
            // Refused before the ledger is opened or created: nothing is written for a spec that cannot run here.
            foreach (var spec in specs)
            {
                Console.Error.WriteLine($"hashing the weights of {spec.Name} (cached after the first time)...");
                RunPlanner.CheckOutput(spec, spec.ComputeRunId());
                signals.Token.ThrowIfCancellationRequested();
            }
            return LedgerOption.Run(location, l => RunAsync(l, location, specs, settings, signals.Token), ledgerPatience, removeIfUnused: true, signals.Token);
        }));
        return command;
    }

    private sealed record Settings(IReadOnlyList<string> Devices, Precision Precision, int Threads, TimeSpan Lease, TimeSpan Patience, bool Evaluate)
    {
        public int Workers => Devices.Count;

        /// <summary>Where the evaluation runs: the first GPU when the workers are GPUs, else the CPU backend.</summary>
        public string EvaluationDevice => DeviceSpec.Parse(Devices[0]).Kind == DeviceKind.Cuda ? Devices[0] : "cpu";
    }

    /// <summary>
    /// One device per local worker: <c>--devices</c> as given; else <c>--workers N</c> CPU workers (as before GPUs);
    /// else every GPU <see cref="Engine.Backends.Cuda.CudaProbe"/> finds, else one CPU worker.
    /// </summary>
    private static IReadOnlyList<string> WorkerDevices(int? workers, string? devices)
    {
        if (devices != null && workers != null) throw new UsageException("--workers and --devices do not go together (--devices starts one worker per device)");
        if (devices != null) return DeviceOptions.ParseList(devices);
        if (workers is int n)
        {
            if (n < 1) throw new UsageException("--workers must be >= 1");
            return Enumerable.Repeat("cpu", n).ToArray();
        }
        return DeviceOptions.DefaultDevices();
    }

    /// <summary>The one numerics identity of the workers' devices; devices that would compute different bytes are a usage error.</summary>
    private static string Numerics(IReadOnlyList<string> devices, Precision precision)
    {
        try
        {
            var all = devices.Select(d => (Device: d, Numerics: RunNumerics.Of(d, precision))).ToArray();
            var kinds = all.Select(a => a.Numerics).Distinct().ToArray();
            if (kinds.Length > 1)
                throw new UsageException($"--devices {string.Join(",", devices)} mix numerics ({string.Join(", ", all.Select(a => $"{a.Device}: {a.Numerics}"))}); " +
                                         "their shards would differ in their bytes: run each kind as its own run");
            return kinds[0];
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static async Task<int> RunAsync(ILedger ledger, string location, RunSpec[] specs, Settings settings, CancellationToken stop)
    {
        var log = (string m) => Console.Error.WriteLine(m);
        var retry = new LedgerRetry(settings.Patience, log, ledger.Description);
        Console.Error.WriteLine($"ledger: {ledger.Description}");

        var runs = new List<(RunSpec Spec, RunRecord Run)>();
        foreach (var spec in specs)
        {
            var run = await RunPlanner.PlanAsync(ledger, spec, retry, stop);
            var shards = await retry.RunAsync(ct => ledger.GetShardsAsync(run.RunId, ct), stop);
            int done = shards.Count(s => s.State == ShardState.Done);
            Console.Error.WriteLine($"run {spec.Name}: id {run.RunId}, {run.NumSamples} samples in {run.ShardCount} shard(s) of {run.ShardSize}, " +
                                    $"output {run.OutputDirectory}" + (done > 0 ? $"; resuming: {done} shard(s) already done" : ""));
            if (done > 0)
            {
                var reset = await RunPlanner.VerifyAsync(ledger, run, retry, log, stop);
                if (reset.Count > 0) Console.Error.WriteLine($"run {spec.Name}: {reset.Count} finished shard(s) failed verification and will be made again");
            }
            runs.Add((spec, run));
        }

        var merged = new Dictionary<string, MergeResult>();
        while (merged.Count < runs.Count)
        {
            await GenerateAsync(ledger, location, runs.Select(r => r.Run).ToArray(), settings, retry, stop);
            foreach (var (spec, run) in runs)
            {
                if (merged.ContainsKey(run.RunId)) continue;
                string output = Path.Combine(run.OutputDirectory, ShardFiles.Samples);
                MergeResult? result = null;
                Progress.Items($"merging {spec.Name}", run.NumSamples, "samples",
                    report => result = RunMerger.MergeAsync(ledger, run, output, retry, log, report, stop).GetAwaiter().GetResult());
                if (result == null)
                {
                    Console.Error.WriteLine($"run {spec.Name}: shard(s) failed verification at merge; generating them again");
                    continue;
                }
                merged[run.RunId] = result;
                Console.Error.WriteLine($"run {spec.Name}: wrote {result.Samples} samples to {result.Path} (sha256 {result.Sha256})");
            }
        }

        foreach (var (spec, run) in runs)
        {
            var result = merged[run.RunId];
            (EvaluationReport Report, string Text)? metrics = settings.Evaluate && spec.Inception != null && spec.Reference != null
                ? await RunEvaluation.EvaluateAsync(ledger, spec, run, retry, settings.Threads * settings.Workers, settings.EvaluationDevice, stop)
                : null;
            var shards = await retry.RunAsync(ct => ledger.GetShardsAsync(run.RunId, ct), stop);
            var events = await retry.RunAsync(ct => ledger.GetEventsAsync(run.RunId, ct), stop);
            var values = metrics is { Report: var r } ? new RunMetrics
            {
                Fid = r.Fid.Value, Sfid = r.Sfid.Value, InceptionScore = r.InceptionScore.Value, Precision = r.Precision.Value, Recall = r.Recall.Value,
            } : null;
            var summary = RunSummaries.Build(spec, run, result, shards, events, values, metrics?.Text);
            summary.Save(Path.Combine(run.OutputDirectory, RunSummary.FileName));
            Console.Error.WriteLine($"run {spec.Name}: {Path.Combine(run.OutputDirectory, RunSummary.FileName)} " +
                                    string.Create(CultureInfo.InvariantCulture, $"({summary.MacsPerForward / 1e9:F3} GMACs per forward, {summary.NumSamples / Math.Max(summary.GenerationSeconds, 1e-9):F2} images/s per worker)"));
        }
        return ExitCodes.Ok;
    }

    /// <summary>Keeps local workers busy until every shard of <paramref name="runs"/> is done, with the live view.</summary>
    private static async Task GenerateAsync(ILedger ledger, string location, RunRecord[] runs, Settings settings, LedgerRetry retry,
        CancellationToken stop)
    {
        var view = await RunProgress.SnapshotAsync(ledger, runs, retry, stop);
        if (view.AllDone) return;
        string logs = Path.Combine(runs[0].OutputDirectory, "logs");
        await using var launcher = new LocalLauncher(slot => WorkerStartInfo(location, runs, settings, settings.Devices[slot]), settings.Workers, logs,
            m => Console.Error.WriteLine(m));
        var progress = new RunProgress(view);
        try
        {
            await progress.ShowAsync(async () =>
            {
                var snapshot = await RunProgress.SnapshotAsync(ledger, runs, retry, stop);
                launcher.Tend(!snapshot.AllDone);
                if (launcher.Failure != null) throw new InvalidOperationException(launcher.Failure);
                return (snapshot, launcher.Slots);
            }, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Console.Error.WriteLine("interrupted: stopping the workers (they give their shards back); re-run the same command to resume");
            await launcher.StopAsync(TimeSpan.FromSeconds(20));
            throw;
        }
        catch (InvalidOperationException e)
        {
            await launcher.StopAsync(TimeSpan.FromSeconds(20));
            // A worker that failed on its environment (a full disk, an unusable ledger) makes the run fail the same way.
            if (launcher.FailureCode == ExitCodes.Environment) throw new EnvironmentException(e.Message);
            throw new RunFailedException(e.Message);
        }
        await launcher.DrainAsync(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20));
        Console.Error.WriteLine(progress.Summary());
    }

    private static ProcessStartInfo WorkerStartInfo(string location, RunRecord[] runs, Settings settings, string device)
    {
        var self = SelfCommand();
        var args = new List<string>(self.Skip(1))
        {
            "worker",
            "--device", device,
            "--precision", Backends.PrecisionName(settings.Precision),
            "--threads", settings.Threads.ToString(CultureInfo.InvariantCulture),
            "--lease-seconds", settings.Lease.TotalSeconds.ToString("R", CultureInfo.InvariantCulture),
            "--ledger-patience", settings.Patience.TotalSeconds.ToString("R", CultureInfo.InvariantCulture),
            "--exit-with-parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var run in runs)
        {
            args.Add("--run");
            args.Add(run.RunId);
        }
        var psi = new ProcessStartInfo(self[0], args);
        psi.Environment[Ledgers.EnvironmentVariable] = location; // not on the command line: it may hold a password
        psi.Environment["NO_COLOR"] = "1";
        return psi;
    }

    /// <summary>How to start this program again: the apphost, or <c>dotnet dydit-eval.dll</c>.</summary>
    private static string[] SelfCommand()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        string name = Path.GetFileNameWithoutExtension(process);
        if (name == "dotnet")
            return [process, Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll")];
        return [process];
    }
}

/// <summary>A run that cannot finish (a worker failed on bad input or its environment).</summary>
internal sealed class RunFailedException(string message) : Exception(message);
