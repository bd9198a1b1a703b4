using System.Diagnostics;
using System.Globalization;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Work;
using Spectre.Console;

namespace DyDiT.Eval.Cli;

/// <summary>Where the runs stand: per run, samples in done shards, samples so far in leased shards, and shard counts.</summary>
internal sealed record RunsSnapshot(IReadOnlyList<RunState> Runs)
{
    public bool AllDone => Runs.All(r => r.ShardsDone == r.Shards);

    public long Total => Runs.Sum(r => r.Total);

    public double Done => Runs.Sum(r => r.Done);
}

internal sealed record RunState(string Name, string RunId, long Total, double Done, int Shards, int ShardsDone, int ShardsLeased,
    int ReLeased, IReadOnlyList<ShardRecord> Leased);

/// <summary>
/// The one live view of <c>run</c>: samples done of the total, samples/s since this command started, time left, one row
/// per run (shards done, leased, re-leased) and one per local worker (pid, state, the shard it holds, starts). Without a
/// terminal on stderr it prints a line every 5 seconds instead.
/// </summary>
internal sealed class RunProgress(RunsSnapshot start)
{
    private readonly RunsSnapshot _start = start;
    private static readonly IAnsiConsole Err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private RunsSnapshot _last = start;

    public static async Task<RunsSnapshot> SnapshotAsync(ILedger ledger, IReadOnlyList<RunRecord> runs, LedgerRetry retry, CancellationToken stop)
    {
        var states = new List<RunState>();
        foreach (var run in runs)
        {
            var shards = await retry.RunAsync(ct => ledger.GetShardsAsync(run.RunId, ct), stop);
            var leased = shards.Where(s => s.State == ShardState.Leased).ToArray();
            double done = shards.Where(s => s.State == ShardState.Done).Sum(s => (long)s.Count) + leased.Sum(s => (double)s.SamplesDone);
            states.Add(new RunState(run.Name, run.RunId, run.NumSamples, done, shards.Count, shards.Count(s => s.State == ShardState.Done),
                leased.Length, shards.Count(s => s.Attempts > 1), leased));
        }
        return new RunsSnapshot(states);
    }

    /// <summary>Calls <paramref name="tick"/> about once a second and shows its result until every shard is done.</summary>
    public async Task ShowAsync(Func<Task<(RunsSnapshot Runs, IReadOnlyList<WorkerSlot> Workers)>> tick, CancellationToken stop)
    {
        if (Console.IsErrorRedirected)
        {
            var next = TimeSpan.Zero;
            while (true)
            {
                var (snapshot, workers) = await tick();
                Observe(snapshot);
                if (snapshot.AllDone) return;
                if (_clock.Elapsed >= next)
                {
                    Console.Error.WriteLine(Headline() + $"; workers running: {workers.Count(w => w.Running)}/{workers.Count}");
                    next = _clock.Elapsed + TimeSpan.FromSeconds(5);
                }
                await Task.Delay(1000, stop);
            }
        }
        await Err.Live(new Text("starting workers...")).AutoClear(false).StartAsync(async ctx =>
        {
            while (true)
            {
                var (snapshot, workers) = await tick();
                Observe(snapshot);
                ctx.UpdateTarget(Render(workers));
                ctx.Refresh();
                if (snapshot.AllDone) return;
                await Task.Delay(1000, stop);
            }
        });
    }

    /// <summary>Takes <paramref name="snapshot"/> as the latest state (what each tick does).</summary>
    internal void Observe(RunsSnapshot snapshot) => _last = snapshot;

    /// <summary>The closing line: what this invocation generated and how fast.</summary>
    public string Summary() => string.Create(CultureInfo.InvariantCulture,
        $"all shards done: {Math.Max(_last.Done - _start.Done, 0):F0} samples generated in {_clock.Elapsed.TotalSeconds:F1} s ({Rate():F2} samples/s)");

    private double Rate() => Rate(_start.Done, _last.Done, _clock.Elapsed);

    /// <summary>
    /// Samples per second from <paramref name="startDone"/> to <paramref name="nowDone"/> over <paramref name="elapsed"/>;
    /// never negative: a re-leased shard starts again from zero, so the count may drop below where this view began.
    /// </summary>
    internal static double Rate(double startDone, double nowDone, TimeSpan elapsed) =>
        Math.Max(nowDone - startDone, 0) / Math.Max(elapsed.TotalSeconds, 1e-9);

    private string Headline()
    {
        double rate = Rate();
        double left = _last.Total - _last.Done;
        string eta = rate > 0 ? TimeSpan.FromSeconds(Math.Round(left / rate)).ToString("g", CultureInfo.InvariantCulture) : "--";
        int released = _last.Runs.Sum(r => r.ReLeased);
        return string.Create(CultureInfo.InvariantCulture,
            $"samples {_last.Done:F0}/{_last.Total} ({100 * _last.Done / Math.Max(_last.Total, 1):F1}%), {rate:F2} samples/s, ETA {eta}, re-leased shards {released}");
    }

    private Rows Render(IReadOnlyList<WorkerSlot> workers)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumns("run", "samples", "shards done", "leased", "re-leased");
        foreach (var r in _last.Runs)
            table.AddRow(Markup.Escape($"{r.Name} ({r.RunId[..8]})"), $"{r.Done:F0}/{r.Total}", $"{r.ShardsDone}/{r.Shards}", $"{r.ShardsLeased}", $"{r.ReLeased}");
        var workerTable = new Table().Border(TableBorder.Rounded);
        workerTable.AddColumns("worker", "pid", "state", "starts", "log");
        foreach (var w in workers)
            workerTable.AddRow($"{w.Slot}", w.ProcessId?.ToString(CultureInfo.InvariantCulture) ?? "-",
                w.Running ? "[green]running[/]" : w.LastExitCode is int c ? $"exited {c}" : "idle", $"{w.Starts}", Markup.Escape(w.LogPath));
        var bar = new BreakdownChart().Width(60).HideTags()
            .AddItem("done", Math.Max(_last.Done, 0), Color.Green)
            .AddItem("left", Math.Max(_last.Total - _last.Done, 0), Color.Grey);
        return new Rows(new Markup("[bold]" + Markup.Escape(Headline()) + "[/]"), bar, table, workerTable);
    }
}
