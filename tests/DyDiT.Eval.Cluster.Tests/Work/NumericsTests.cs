using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests.Work;

/// <summary>Shards of different numerics are never merged: a worker of other numerics refuses the run, and a run of other numerics cannot take over an output directory.</summary>
public sealed class NumericsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-numerics-");

    public void Dispose() => _dir.Delete(recursive: true);

    private RunSpec Spec(string numerics)
    {
        var path = Path.Combine(_dir.FullName, "run.json");
        File.WriteAllText(path, $$"""
            {"name": "tiny", "model": "{{Fixtures.Path("dit", "dit_tiny.json")}}", "checkpoint": "{{Fixtures.Path("dit", "dit_tiny.pt")}}",
             "vae": "{{Fixtures.Path("vae", "vae_tiny")}}", "num_samples": 4, "shard_size": 2, "image_size": 64, "num_classes": 10, "output": "out"}
            """);
        return RunSpec.Load(path) with { Numerics = numerics };
    }

    [Fact]
    public async Task AWorkerOfOtherNumericsRefusesTheRunAndGivesTheShardBack()
    {
        await using var ledger = await Ledgers.OpenAsync("sqlite:" + Path.Combine(_dir.FullName, "l.sqlite"));
        var retry = new LedgerRetry(TimeSpan.FromSeconds(5), _ => { });
        var run = await RunPlanner.PlanAsync(ledger, Spec("cuda-tf32-sm_90"), retry, CancellationToken.None);
        using var cpu = Backends.Create("cpu", 1);
        var options = new WorkerOptions([run.RunId], TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5));
        var worker = new ShardWorker(ledger, options, cpu, _ => { });
        var e = await Assert.ThrowsAsync<RunConflictException>(() => worker.RunAsync(CancellationToken.None));
        Assert.Contains("cuda-tf32-sm_90", e.Message);
        Assert.Contains(RunNumerics.Cpu, e.Message);
        Assert.All(await ledger.GetShardsAsync(run.RunId), s => Assert.Equal(ShardState.Pending, s.State));
        Assert.Equal(0, worker.ShardsDone);
    }

    [Fact]
    public async Task ARunOfOtherNumericsCannotTakeOverAnOutputDirectory()
    {
        await using var ledger = await Ledgers.OpenAsync("sqlite:" + Path.Combine(_dir.FullName, "l.sqlite"));
        var retry = new LedgerRetry(TimeSpan.FromSeconds(5), _ => { });
        var cpuRun = await RunPlanner.PlanAsync(ledger, Spec(RunNumerics.Cpu), retry, CancellationToken.None);
        var e = await Assert.ThrowsAsync<RunConflictException>(() => RunPlanner.PlanAsync(ledger, Spec("cuda-bf16-sm_90"), retry, CancellationToken.None));
        Assert.Contains(cpuRun.RunId, e.Message);
        // the same numerics again is a resume, not a conflict
        Assert.Equal(cpuRun.RunId, (await RunPlanner.PlanAsync(ledger, Spec(RunNumerics.Cpu), retry, CancellationToken.None)).RunId);
    }
}
