using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

public sealed class LayeringTests
{
    /// <summary>
    /// Test files whose backends other work is turning into <c>TestBackends</c> parameters (kernel and network tests on every
    /// device). Each entry must still construct a backend itself — once it no longer does, the test below fails until the
    /// entry is removed, so this list only shrinks.
    /// </summary>
    [Fact]
    public void DependsOnlyOnLowerLayers() => Architecture.AssertProjectReferences("dydit-eval",
        "DyDiT.Eval.Engine", "DyDiT.Eval.Reference", "DyDiT.Eval.Workers", "DyDiT.Eval.Evaluation", "DyDiT.Eval.Cluster");

    [Fact]
    public void OnlyBackendsCreateConstructsBackends()
    {
        var found = Architecture.FilesConstructingBackends(Architecture.RepositoryRoot());
        Assert.True(found.Count == 0,
            "construct backends with Backends.Create(device, threads, precision), not with new CpuBackend/CudaBackend: " + string.Join(", ", found));
    }
}
