using System.Collections.Concurrent;
using DyDiT.Eval.Cluster.Ledger;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests.Ledger;

/// <summary>
/// What every <see cref="ILedger"/> must do, run against each implementation by a subclass that supplies a fresh store
/// per test. Concurrency tests open one ledger instance per task, as separate worker processes would.
/// </summary>
public abstract class LedgerContractTests : IAsyncLifetime
{
    /// <summary>Longer than any test; a lease that must not expire.</summary>
    protected static readonly TimeSpan LongLease = TimeSpan.FromMinutes(5);

    /// <summary>Short enough to expire within a test; waits use <see cref="PastShortLease"/>.</summary>
    protected static readonly TimeSpan ShortLease = TimeSpan.FromMilliseconds(300);

    protected static readonly TimeSpan PastShortLease = TimeSpan.FromMilliseconds(600);

    private static readonly string ShaA = new('a', 64);
    private static readonly string ShaB = new('b', 64);
    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, 123, TimeSpan.Zero);

    private readonly ConcurrentBag<ILedger> _opened = [];

    /// <summary>Prepares an empty store (file, database) for this test.</summary>
    protected abstract Task CreateStoreAsync();

    /// <summary>A new ledger instance on this test's store, schema not yet ensured.</summary>
    protected abstract ILedger CreateLedger();

    /// <summary>Runs SQL on the store behind the ledger's back.</summary>
    protected abstract Task ExecuteSqlAsync(string sql);

    /// <summary>Removes this test's store (all ledgers on it are disposed by then).</summary>
    protected abstract Task DeleteStoreAsync();

    public Task InitializeAsync() => CreateStoreAsync();

    public async Task DisposeAsync()
    {
        foreach (var ledger in _opened) await ledger.DisposeAsync();
        await DeleteStoreAsync();
    }

    /// <summary>A ledger instance with its schema ensured; disposed after the test.</summary>
    protected async Task<ILedger> OpenAsync()
    {
        var ledger = Track(CreateLedger());
        await ledger.EnsureSchemaAsync();
        return ledger;
    }

    private ILedger Track(ILedger ledger)
    {
        _opened.Add(ledger);
        return ledger;
    }

    private static RunRecord Run(string id, long samples = 10, int shardSize = 3, DateTimeOffset? created = null) =>
        new(id, "run " + id, $$"""{"id":"{{id}}"}""", "/data/" + id, samples, shardSize, created ?? T0);

    private static ShardResult Result(string sha, string worker = "w1") =>
        new($"shard-{sha[..4]}.npz", sha, 3, 1.5, 123_456_789_012, worker, "host-" + worker);

    [LedgerFact]
    public async Task Stored_file_names_outside_the_output_directory_are_refused_on_read_and_write()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 6, shardSize: 3));
        var lease = (await ledger.ClaimAsync("w1", "r", LongLease))!;
        foreach (var bad in new[] { "../victim", "/tmp/victim", "sub/shard.npz", "..", "" })
        {
            await Assert.ThrowsAsync<ArgumentException>(() => ledger.CompleteAsync(lease, Result(ShaA) with { File = bad }));
            await Assert.ThrowsAsync<ArgumentException>(() => ledger.CompleteAsync(lease, Result(ShaA) with { FeaturesFile = bad, FeaturesSha256 = ShaB }));
        }
        Assert.True(await ledger.CompleteAsync(lease, Result(ShaA)));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => ledger.SetShardFeaturesAsync("r", 0, "../f.npz", ShaB));

        foreach (var (column, bad) in new[] { ("file", "../victim"), ("file", "/tmp/x/victim"), ("features_file", "a/b.npz"), ("file", "..") })
        {
            await ExecuteSqlAsync($"UPDATE shards SET file = 'shard-a.npz', features_file = NULL WHERE idx = 0");
            await ExecuteSqlAsync($"UPDATE shards SET {column} = '{bad}' WHERE idx = 0");
            var e = await Assert.ThrowsAsync<LedgerDataException>(() => ledger.GetShardsAsync("r"));
            Assert.Contains($"shard 0 of run r records {column} '{bad}'", e.Message);
            Assert.Contains(ledger.Description, e.Message);
        }

        await ExecuteSqlAsync("UPDATE shards SET file = 'shard-a.npz' WHERE idx = 0");
        Assert.Equal(2, (await ledger.GetShardsAsync("r")).Count);
        await ExecuteSqlAsync("UPDATE runs SET output_directory = '/data/../etc' WHERE run_id = 'r'");
        var run = await Assert.ThrowsAsync<LedgerDataException>(() => ledger.ListRunsAsync());
        Assert.Contains("'/data/../etc'", run.Message);
    }

    [LedgerFact]
    public async Task A_missing_table_is_a_permanent_error_that_is_not_retried()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r"));
        await ExecuteSqlAsync("DROP TABLE shards");
        var retries = new ConcurrentBag<string>();
        var retry = new LedgerRetry(TimeSpan.FromSeconds(60), retries.Add, ledger.Description);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<LedgerException>(() => retry.RunAsync(ct => ledger.GetShardsAsync("r", ct), CancellationToken.None));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Empty(retries);
        Assert.Contains(ledger.Description, e.Message);
        Assert.Contains("shards", e.Message);
        Assert.Contains("not retried", e.Message);
    }

    [LedgerFact]
    public async Task Schema_creation_is_concurrency_safe_and_repeatable()
    {
        var ledgers = Enumerable.Range(0, 6).Select(_ => Track(CreateLedger())).ToList();
        await Task.WhenAll(ledgers.Select(l => Task.Run(() => l.EnsureSchemaAsync())));
        await ledgers[0].EnsureSchemaAsync();
        await ledgers[1].RegisterRunAsync(Run("r"));
        Assert.Single(await ledgers[5].ListRunsAsync());
    }

    [LedgerFact]
    public async Task A_schema_from_a_newer_tool_is_refused_naming_both_versions()
    {
        await OpenAsync();
        await ExecuteSqlAsync("UPDATE schema_version SET version = 99");
        var e = await Assert.ThrowsAsync<LedgerException>(() => Track(CreateLedger()).EnsureSchemaAsync());
        Assert.Contains("version 99", e.Message);
        Assert.Contains("version 1", e.Message);
    }

    [LedgerFact]
    public async Task Registering_adds_the_run_and_its_shards_once()
    {
        var ledger = await OpenAsync();
        var run = Run("r1", samples: 10, shardSize: 3);
        Assert.Equal(run, await ledger.RegisterRunAsync(run));
        Assert.Equal(run, await ledger.RegisterRunAsync(run with { Name = "other", NumSamples = 99, CreatedAt = T0.AddDays(1) }));

        Assert.Equal([run], await ledger.ListRunsAsync());
        Assert.Equal(run, await ledger.GetRunAsync("r1"));
        Assert.Null(await ledger.GetRunAsync("r2"));
        var shards = await ledger.GetShardsAsync("r1");
        Assert.Equal([(0L, 3), (3L, 3), (6L, 3), (9L, 1)], shards.Select(s => (s.First, s.Count)));
        Assert.Equal([0, 1, 2, 3], shards.Select(s => s.Index));
        Assert.All(shards, s =>
        {
            Assert.Equal(ShardState.Pending, s.State);
            Assert.Equal("r1", s.RunId);
            Assert.Null(s.WorkerId);
            Assert.Null(s.LeaseExpires);
            Assert.Equal(0, s.Attempts);
            Assert.Null(s.Result);
        });
    }

    [LedgerFact]
    public async Task Concurrent_registrations_of_one_run_leave_one_run_and_one_set_of_shards()
    {
        var first = await OpenAsync();
        var others = await Task.WhenAll(Enumerable.Range(0, 7).Select(_ => OpenAsync()));
        var run = Run("r", samples: 100, shardSize: 7);
        var stored = await Task.WhenAll(others.Append(first).Select((l, i) => Task.Run(() => l.RegisterRunAsync(run with { Name = "attempt " + i }))));

        var runs = await first.ListRunsAsync();
        Assert.Single(runs);
        Assert.All(stored, s => Assert.Equal(runs[0], s));
        Assert.Equal(Enumerable.Range(0, run.ShardCount), (await first.GetShardsAsync("r")).Select(s => s.Index));
    }

    [LedgerFact]
    public async Task Claims_take_the_lowest_shard_and_return_null_when_none_is_left()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 10, shardSize: 3));
        for (int i = 0; i < 4; i++)
        {
            var lease = await ledger.ClaimAsync("w1", "r", LongLease);
            Assert.NotNull(lease);
            Assert.Equal(new ShardLease("r", i, i * 3, i == 3 ? 1 : 3, "w1", 1, false), lease);
        }

        Assert.Null(await ledger.ClaimAsync("w2", "r", LongLease));
        Assert.Null(await ledger.ClaimAsync("w2", null, LongLease));
        var shards = await ledger.GetShardsAsync("r");
        Assert.All(shards, s =>
        {
            Assert.Equal(ShardState.Leased, s.State);
            Assert.Equal("w1", s.WorkerId);
            Assert.Equal(1, s.Attempts);
            Assert.True(s.LeaseExpires > DateTimeOffset.UtcNow.AddMinutes(3), $"lease expires {s.LeaseExpires}");
        });
        var events = await ledger.GetEventsAsync("r");
        Assert.Equal(Enumerable.Repeat(LedgerEventKind.Claimed, 4), events.Select(e => e.Kind));
        Assert.Equal([0, 1, 2, 3], events.Select(e => e.ShardIndex!.Value));
        Assert.All(events, e => Assert.Equal("w1", e.WorkerId));
    }

    [LedgerFact]
    public async Task Claims_across_runs_take_the_oldest_run_first_then_the_run_id()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("b", samples: 1, created: T0));
        await ledger.RegisterRunAsync(Run("a", samples: 1, created: T0));
        await ledger.RegisterRunAsync(Run("c", samples: 1, created: T0.AddHours(-1)));
        await ledger.RegisterRunAsync(Run("d", samples: 2, shardSize: 1, created: T0.AddHours(1)));

        Assert.Equal(["c", "a", "b", "d"], (await ledger.ListRunsAsync()).Select(r => r.RunId));
        Assert.Equal(("d", 0), (await ledger.ClaimAsync("w", "d", LongLease)) is { } d0 ? (d0.RunId, d0.ShardIndex) : default);
        Assert.Equal(("d", 1), (await ledger.ClaimAsync("w", "d", LongLease)) is { } d1 ? (d1.RunId, d1.ShardIndex) : default);
        var order = new List<string>();
        while (await ledger.ClaimAsync("w", null, LongLease) is { } lease) order.Add(lease.RunId);
        Assert.Equal(["c", "a", "b"], order);
    }

    [LedgerFact]
    public async Task Concurrent_claimers_take_every_shard_exactly_once()
    {
        var setup = await OpenAsync();
        await setup.RegisterRunAsync(Run("r", samples: 48, shardSize: 1));
        var ledgers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => OpenAsync()));

        var leases = await Task.WhenAll(ledgers.Select((ledger, w) => Task.Run(async () =>
        {
            var mine = new List<ShardLease>();
            while (await ledger.ClaimAsync("w" + w, "r", LongLease) is { } lease) mine.Add(lease);
            return mine;
        })));

        var all = leases.SelectMany(l => l).ToList();
        Assert.Equal(Enumerable.Range(0, 48), all.Select(l => l.ShardIndex).Order());
        Assert.All(all, l => Assert.Equal(1, l.Attempt));
        var shards = await setup.GetShardsAsync("r");
        Assert.All(shards, s => Assert.Equal((ShardState.Leased, 1), (s.State, s.Attempts)));
        Assert.Equal(all.ToDictionary(l => l.ShardIndex, l => l.WorkerId), shards.ToDictionary(s => s.Index, s => s.WorkerId!));
        Assert.Equal(48, (await setup.GetEventsAsync("r")).Count(e => e.Kind == LedgerEventKind.Claimed));
    }

    [LedgerFact]
    public async Task Heartbeats_extend_the_lease_and_record_progress()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 1));
        var lease = (await ledger.ClaimAsync("w1", "r", ShortLease))!;
        Assert.True(await ledger.HeartbeatAsync(lease, LongLease, samplesDone: 1));
        await Task.Delay(PastShortLease);

        Assert.Null(await ledger.ClaimAsync("w2", "r", LongLease));
        var shard = Assert.Single(await ledger.GetShardsAsync("r"));
        Assert.Equal((ShardState.Leased, "w1", 1, 1), (shard.State, shard.WorkerId, shard.SamplesDone, shard.Attempts));
        Assert.True(shard.LeaseExpires > DateTimeOffset.UtcNow.AddMinutes(3), $"lease expires {shard.LeaseExpires}");
        Assert.True(await ledger.HeartbeatAsync(lease, LongLease, samplesDone: 1));
    }

    [LedgerFact]
    public async Task An_expired_lease_is_released_to_the_next_claimer_and_the_old_holder_loses_it()
    {
        var ledger = await OpenAsync();
        var other = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 1));
        var first = (await ledger.ClaimAsync("w1", "r", ShortLease))!;
        await Task.Delay(PastShortLease);

        var second = await other.ClaimAsync("w2", null, LongLease);
        Assert.Equal(new ShardLease("r", 0, 0, 1, "w2", 2, WasReleased: true), second);
        Assert.False(await ledger.HeartbeatAsync(first, LongLease, 0));
        Assert.True(await other.HeartbeatAsync(second!, LongLease, 0));

        var shard = Assert.Single(await ledger.GetShardsAsync("r"));
        Assert.Equal((ShardState.Leased, "w2", 2), (shard.State, shard.WorkerId, shard.Attempts));
        var events = await ledger.GetEventsAsync("r");
        Assert.Equal([(LedgerEventKind.Claimed, "w1", "attempt 1"), (LedgerEventKind.Released, "w2", "w1"), (LedgerEventKind.Claimed, "w2", "attempt 2")],
            events.Select(e => (e.Kind, e.WorkerId!, e.Detail!)));
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.At <= p.Second.At), "event times go forward");
    }

    [LedgerFact]
    public async Task Completing_is_idempotent_and_a_different_hash_is_a_recorded_conflict()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 3));
        var lease = (await ledger.ClaimAsync("w1", "r", LongLease))!;
        var result = Result(ShaA) with { FeaturesFile = "features-0.npz", FeaturesSha256 = ShaB };

        Assert.True(await ledger.CompleteAsync(lease, result));
        var done = Assert.Single(await ledger.GetShardsAsync("r"));
        Assert.Equal((ShardState.Done, "w1", 3, (DateTimeOffset?)null), (done.State, done.WorkerId, done.SamplesDone, done.LeaseExpires));
        Assert.Equal(result, done.Result);

        Assert.True(await ledger.CompleteAsync(lease, Result(ShaA.ToUpperInvariant(), "w9")));
        Assert.False(await ledger.CompleteAsync(lease, Result(ShaB, "w9")));
        Assert.Equal(result, Assert.Single(await ledger.GetShardsAsync("r")).Result);
        Assert.False(await ledger.HeartbeatAsync(lease, LongLease, 3));
        Assert.Null(await ledger.ClaimAsync("w2", null, LongLease));

        var events = await ledger.GetEventsAsync("r");
        Assert.Equal([LedgerEventKind.Claimed, LedgerEventKind.Completed, LedgerEventKind.Conflict], events.Select(e => e.Kind));
        Assert.Contains(ShaA, events[2].Detail);
        Assert.Contains(ShaB, events[2].Detail);
    }

    [LedgerFact]
    public async Task A_released_holder_may_still_complete_and_the_new_holder_then_agrees()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 1));
        var stale = (await ledger.ClaimAsync("w1", "r", ShortLease))!;
        await Task.Delay(PastShortLease);
        var current = (await ledger.ClaimAsync("w2", "r", LongLease))!;

        Assert.True(await ledger.CompleteAsync(stale, Result(ShaA, "w1")));
        Assert.False(await ledger.HeartbeatAsync(current, LongLease, 0));
        await ledger.AbandonAsync(current, "lost the lease");
        Assert.True(await ledger.CompleteAsync(current, Result(ShaA, "w2")));

        var shard = Assert.Single(await ledger.GetShardsAsync("r"));
        Assert.Equal((ShardState.Done, "w1", "w1"), (shard.State, shard.WorkerId, shard.Result!.WorkerId));
        Assert.DoesNotContain(await ledger.GetEventsAsync("r"), e => e.Kind is LedgerEventKind.Abandoned or LedgerEventKind.Conflict);
    }

    [LedgerFact]
    public async Task Abandoning_gives_the_shard_back_only_while_the_lease_holds_it()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 1));
        var lease = (await ledger.ClaimAsync("w1", "r", LongLease))!;
        await ledger.AbandonAsync(lease with { WorkerId = "w2" }, "not mine");
        await ledger.AbandonAsync(lease with { Attempt = 2 }, "not this attempt");
        Assert.Equal(ShardState.Leased, Assert.Single(await ledger.GetShardsAsync("r")).State);

        await ledger.AbandonAsync(lease, "out of memory");
        var shard = Assert.Single(await ledger.GetShardsAsync("r"));
        Assert.Equal((ShardState.Pending, null, (DateTimeOffset?)null, 1), (shard.State, shard.WorkerId, shard.LeaseExpires, shard.Attempts));
        Assert.False(await ledger.HeartbeatAsync(lease, LongLease, 0));

        var again = await ledger.ClaimAsync("w2", "r", LongLease);
        Assert.Equal(new ShardLease("r", 0, 0, 1, "w2", 2, WasReleased: false), again);
        var events = await ledger.GetEventsAsync("r");
        Assert.Equal([(LedgerEventKind.Claimed, "w1", "attempt 1"), (LedgerEventKind.Abandoned, "w1", "out of memory"), (LedgerEventKind.Claimed, "w2", "attempt 2")],
            events.Select(e => (e.Kind, e.WorkerId!, e.Detail!)));
    }

    [LedgerFact]
    public async Task Resetting_puts_a_done_shard_back_to_pending_without_its_result()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 2, shardSize: 1));
        var lease = (await ledger.ClaimAsync("w1", "r", LongLease))!;
        Assert.True(await ledger.CompleteAsync(lease, Result(ShaA)));

        await ledger.ResetShardAsync("r", 0, "sha256 mismatch");
        var shard = (await ledger.GetShardsAsync("r"))[0];
        Assert.Equal((ShardState.Pending, null, null, 0, 1), (shard.State, shard.WorkerId, shard.Result, shard.SamplesDone, shard.Attempts));

        var again = (await ledger.ClaimAsync("w2", "r", LongLease))!;
        Assert.Equal((0, 2, false), (again.ShardIndex, again.Attempt, again.WasReleased));
        Assert.True(await ledger.CompleteAsync(again, Result(ShaB, "w2")));
        Assert.Equal(ShaB, (await ledger.GetShardsAsync("r"))[0].Result!.Sha256);

        var reset = Assert.Single(await ledger.GetEventsAsync("r"), e => e.Kind == LedgerEventKind.Reset);
        Assert.Equal(("r", 0, "sha256 mismatch"), (reset.RunId!, reset.ShardIndex!.Value, reset.Detail!));
        await Assert.ThrowsAsync<LedgerException>(() => ledger.ResetShardAsync("r", 7, "no such shard"));
    }

    [LedgerFact]
    public async Task Features_attach_to_a_done_shard_only()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r", samples: 1));
        await Assert.ThrowsAsync<LedgerException>(() => ledger.SetShardFeaturesAsync("r", 0, "features-0.npz", ShaB));
        var lease = (await ledger.ClaimAsync("w1", "r", LongLease))!;
        await ledger.CompleteAsync(lease, Result(ShaA));

        await ledger.SetShardFeaturesAsync("r", 0, "features-0.npz", ShaB);
        Assert.Equal(Result(ShaA) with { FeaturesFile = "features-0.npz", FeaturesSha256 = ShaB }, (await ledger.GetShardsAsync("r"))[0].Result);
    }

    [LedgerFact]
    public async Task Events_come_back_in_order_by_run_with_their_kinds_and_times()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterRunAsync(Run("r1", samples: 1));
        await ledger.RegisterRunAsync(Run("r2", samples: 1));
        var given = T0.AddMinutes(5);
        var before = DateTimeOffset.UtcNow.AddMinutes(-1);
        await ledger.AddEventAsync(new LedgerEvent(given, LedgerEventKind.WorkerStarted, null, null, "w1", "cuda:0"));
        await ledger.AddEventAsync(new LedgerEvent(given, LedgerEventKind.Merged, "r2", null, null, "samples.npz " + ShaA));
        await ledger.ClaimAsync("w1", "r1", LongLease);
        await ledger.AddEventAsync(new LedgerEvent(default, LedgerEventKind.WorkerStopped, null, null, "w1", null));
        await ledger.AddEventAsync(new LedgerEvent(given, LedgerEventKind.Reset, "r1", 0, null, "by hand"));

        var all = await ledger.GetEventsAsync(null);
        Assert.Equal([LedgerEventKind.WorkerStarted, LedgerEventKind.Merged, LedgerEventKind.Claimed, LedgerEventKind.WorkerStopped, LedgerEventKind.Reset],
            all.Select(e => e.Kind));
        Assert.Equal(new LedgerEvent(given, LedgerEventKind.WorkerStarted, null, null, "w1", "cuda:0"), all[0]);
        Assert.Equal(new LedgerEvent(given, LedgerEventKind.Reset, "r1", 0, null, "by hand"), all[4]);
        Assert.All(all, e => Assert.Equal(TimeSpan.Zero, e.At.Offset));
        Assert.InRange(all[2].At, before, DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.InRange(all[3].At, before, DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal([LedgerEventKind.Claimed, LedgerEventKind.Reset], (await ledger.GetEventsAsync("r1")).Select(e => e.Kind));
        Assert.Equal([LedgerEventKind.Merged], (await ledger.GetEventsAsync("r2")).Select(e => e.Kind));
        Assert.Empty(await ledger.GetEventsAsync("r3"));
    }

    [LedgerFact]
    public async Task Workers_are_registered_updated_and_stopped()
    {
        var ledger = await OpenAsync();
        await ledger.RegisterWorkerAsync(new WorkerInfo("w1", "host-a", 100, "cpu"));
        await ledger.RegisterWorkerAsync(new WorkerInfo("w2", "host-b", 200, "cuda:0"));
        var started = (await ledger.GetWorkersAsync()).Single(w => w.WorkerId == "w1").StartedAt;
        await Task.Delay(20);
        await ledger.RegisterWorkerAsync(new WorkerInfo("w1", "host-a", 101, "cuda:1"));
        await ledger.WorkerStoppedAsync("w2");

        var workers = (await ledger.GetWorkersAsync()).OrderBy(w => w.WorkerId).ToList();
        Assert.Equal(2, workers.Count);
        Assert.Equal(("w1", "host-a", 101, "cuda:1", "running", started), (workers[0].WorkerId, workers[0].Host, workers[0].ProcessId, workers[0].Device,
            workers[0].State, workers[0].StartedAt));
        Assert.True(workers[0].LastSeen > started, $"last seen {workers[0].LastSeen} after start {started}");
        Assert.Equal(("w2", "stopped"), (workers[1].WorkerId, workers[1].State));
        Assert.InRange(workers[1].StartedAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
    }

    [LedgerFact]
    public async Task Times_are_stored_as_utc_instants()
    {
        var ledger = await OpenAsync();
        var local = new DateTimeOffset(2025, 3, 1, 14, 0, 0, 456, TimeSpan.FromHours(2));
        var stored = await ledger.RegisterRunAsync(Run("r", samples: 1, created: local));
        Assert.Equal(local, stored.CreatedAt);
        Assert.Equal(TimeSpan.Zero, stored.CreatedAt.Offset);
        await ledger.ClaimAsync("w", "r", LongLease);
        var expires = Assert.Single(await ledger.GetShardsAsync("r")).LeaseExpires!.Value;
        Assert.Equal(TimeSpan.Zero, expires.Offset);
        Assert.InRange(expires - DateTimeOffset.UtcNow, LongLease - TimeSpan.FromMinutes(1), LongLease + TimeSpan.FromMinutes(1));
    }
}
