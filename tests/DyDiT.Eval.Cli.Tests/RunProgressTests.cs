using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>The live view's rate: a re-leased shard starts again from zero, so "done" can go backwards.</summary>
public sealed class RunProgressTests
{
    [Theory]
    [InlineData(30.0, 50.0, 10.0, 2.0)]   // 20 samples in 10 s
    [InlineData(30.0, 12.0, 10.0, 0.0)]   // a re-lease dropped 18 partial samples: no negative rate
    [InlineData(30.0, 30.0, 10.0, 0.0)]
    [InlineData(0.0, 5.0, 0.0, 5e9)]      // no time yet: finite
    public void The_rate_is_never_negative(double start, double now, double seconds, double expected)
    {
        double rate = RunProgress.Rate(start, now, TimeSpan.FromSeconds(seconds));
        Assert.True(rate >= 0, $"rate {rate}");
        Assert.Equal(expected, rate, 6);
    }

    [Fact]
    public void The_summary_of_a_view_that_went_backwards_shows_no_negative_numbers()
    {
        var leased = new Cluster.Ledger.ShardRecord("r", 0, 0, 10, Cluster.Ledger.ShardState.Leased, "w", null, 2, 8, null);
        var before = new RunsSnapshot([new RunState("t", "r0123456789", 20, 18, 2, 1, 1, 0, [leased])]);
        var after = new RunsSnapshot([new RunState("t", "r0123456789", 20, 10, 2, 1, 1, 1, [leased with { SamplesDone = 0 }])]);
        var view = new RunProgress(before);
        view.Observe(after);
        string summary = view.Summary();
        Assert.DoesNotContain("-", summary.Replace("all shards done:", ""));
        Assert.Contains("0 samples generated", summary);
        Assert.Contains("(0.00 samples/s)", summary);
    }
}
