using System.CommandLine;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval worker --ledger URL [--run ID]… [--device cpu|cuda:N|ilgpu-cpu] [--precision fp32|tf32|bf16] [--threads T]</c>: joins the runs in a ledger from
/// any host: claims shards, generates them into each run's output directory, records them, and exits when no work is
/// left. SIGTERM / Ctrl-C give the current shard back and exit with 130.
/// </summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var ledger = LedgerOption.Create();
        var runs = new Option<string[]>("--run")
        {
            Description = "Serve only this run id (repeatable); default: every run in the ledger, oldest first",
            AllowMultipleArgumentsPerToken = false,
        };
        var device = DeviceOptions.DeviceOption();
        var precision = DeviceOptions.PrecisionOption(DeviceOptions.SamplingPrecision);
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores); the bytes made are the same for any count" };
        var lease = new Option<double>("--lease-seconds") { Description = "Lease length; heartbeats renew it every fifth of it. A dead worker's shard returns to the pool after it", DefaultValueFactory = _ => 60 };
        var patience = LedgerOption.CreatePatience("Seconds to keep retrying an unreachable ledger (at start-up too) before giving up (exit 3)");
        var maxShards = new Option<int?>("--max-shards") { Description = "Exit after this many shards" };
        var parent = new Option<int?>("--exit-with-parent") { Description = "Stop (giving the shard back) when this process id is gone; set by 'run' for its local workers", Hidden = true };
        var command = new Command("worker",
            "Join sampling runs from any host: claim a shard from the ledger, generate it (per-sample noise, so any worker makes the same bytes), " +
            "write shard-<first>-<last>.npz to the run's output directory (a shared filesystem in a cluster), compute its Inception features when " +
            "the run has Inception weights, record sha256, time and MACs, and repeat until the runs are done.")
        {
            ledger, runs, device, precision, threads, lease, patience, maxShards, parent,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            // From the first moment: a stop while the device starts or the ledger is waited for exits 130 as well.
            using var stop = new StopSignals();
            string dev = parse.GetValue(device)!;
            var p = DeviceOptions.Resolve(dev, parse.GetValue(precision), DeviceOptions.SamplingPrecision);
            string numerics;
            try
            {
                numerics = RunNumerics.Of(dev, p);
                dev = DeviceSpec.Parse(dev).ToString();
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            double leaseSeconds = parse.GetValue(lease);
            if (!(leaseSeconds >= 1)) throw new UsageException("--lease-seconds must be >= 1");
            var options = new WorkerOptions(parse.GetValue(runs) ?? [], TimeSpan.FromSeconds(leaseSeconds), TimeSpan.FromSeconds(Math.Min(2, leaseSeconds / 2)),
                LedgerOption.Patience(parse.GetValue(patience)), dev, parse.GetValue(maxShards), numerics);
            string location = LedgerOption.Resolve(parse.GetValue(ledger));
            using var backend = DeviceOptions.Create(dev, parse.GetValue(threads), Backends.PrecisionName(p), DeviceOptions.SamplingPrecision);
            stop.Token.ThrowIfCancellationRequested();
            return Run(location, options, backend, parse.GetValue(parent), stop);
        }));
        return command;
    }

    private static int Run(string location, WorkerOptions options, IBackend backend, int? parentPid, StopSignals stop)
    {
        using var watch = parentPid is int pid ? WatchParent(pid, stop) : null;
        return LedgerOption.Run(location, async ledger =>
        {
            var worker = new ShardWorker(ledger, options, backend, m => Console.Error.WriteLine(m));
            Console.Error.WriteLine($"worker {worker.WorkerId} on {ledger.Description}: {backend.Name}, {options.Numerics} numerics ({backend.Threads} thread(s))");
            await worker.RunAsync(stop.Token);
            Console.Error.WriteLine($"worker {worker.WorkerId}: no work left; {worker.ShardsDone} shard(s) done");
            return ExitCodes.Ok;
        }, options.LedgerPatience, stop: stop.Token);
    }

    private static Timer WatchParent(int pid, StopSignals stop) => new(_ =>
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            if (!p.HasExited) return;
        }
        catch (ArgumentException)
        {
            // gone
        }
        stop.Stop();
    }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
}
