using DyDiT.Eval.Evaluation.Reports;
using DyDiT.Eval.Tests.Common.Reports;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests.Reports;

public sealed class RunResultTests
{
    [Fact]
    public void DerivedNumbersFollowTheirDefinitions()
    {
        var dit = SyntheticRuns.Dit(5, 16);
        var dydit = SyntheticRuns.DyDit(12, 8);
        var rows = RunResult.Compare([dydit, dit]); // the baseline is the DiT run wherever it is
        Assert.Equal(12 / 8.125, rows[0].ImagesPerSecond);
        Assert.Equal(1000 * 8.125 / 12, rows[0].SecondsPer1000);
        Assert.Equal(84.33e9 / 1e9, rows[0].GmacsPerForward);
        Assert.Equal(84.33e9 / 118.64e9, rows[0].GmacsVsDit);
        Assert.Equal(1.0, rows[1].GmacsVsDit);
    }

    [Fact]
    public void WithoutADiTRunOrTimeTheDerivedValuesAreNull()
    {
        var rows = RunResult.Compare([SyntheticRuns.SparseDit(3, 16) with { GenerationSeconds = 0 }]);
        Assert.Null(rows[0].GmacsVsDit);
        Assert.Null(rows[0].ImagesPerSecond);
        Assert.Null(rows[0].SecondsPer1000);
    }

    [Fact]
    public void RunsNamedAlikeGetDistinctNames()
    {
        var a = SyntheticRuns.Dit(5, 16);
        var rows = RunResult.Compare([a, a with { RunId = "other" }, a]);
        Assert.Equal(["DiT-XL/2 cfg1.5 (run-dit-0001)", "DiT-XL/2 cfg1.5 (other)", "DiT-XL/2 cfg1.5 (run-dit-0001) #2"], rows.Select(r => r.Run));
    }

    [Fact]
    public void UnnamedRunsAreShownByTheirModel()
    {
        var dit = SyntheticRuns.Dit(5, 16) with { Name = null };
        var dydit = SyntheticRuns.DyDit(5, 16) with { Name = " " };
        var rows = RunResult.Compare([dit, dydit, dydit with { Lambda = null, RunId = "x" }, SyntheticRuns.SparseDit(3, 16)]);
        Assert.Equal(["DiT-XL/2", "DyDiT λ=0.7 (DiT-XL/2)", "DyDiT (DiT-XL/2)", "SparseDiT-XL/2"], rows.Select(r => r.Run));
    }

    [Fact]
    public void SummaryMetricsWinOverTheFallback()
    {
        var fallback = new RunMetrics { Fid = 99 };
        var rows = RunResult.Compare([SyntheticRuns.Dit(5, 16), SyntheticRuns.SparseDit(3, 16)], [fallback, fallback]);
        Assert.Equal(2.2735, rows[0].Metrics!.Fid);
        Assert.Equal(99, rows[1].Metrics!.Fid);
    }
}
