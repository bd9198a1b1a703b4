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
    private static readonly string[] PendingConversion =
    [
        "tests/DyDiT.Eval.Engine.Tests/ConvKernelTests.cs",
        "tests/DyDiT.Eval.Engine.Tests/GroupNormKernelTests.cs",
        "tests/DyDiT.Eval.Engine.Tests/TransposeKernelTests.cs",
        "tests/DyDiT.Eval.Engine.Tests/UpsampleKernelTests.cs",
        "tests/DyDiT.Eval.Evaluation.Tests/FidInceptionV3Tests.cs",
        "tests/DyDiT.Eval.Workers.Tests/DitTests.cs",
        "tests/DyDiT.Eval.Workers.Tests/DyDitTests.cs",
        "tests/DyDiT.Eval.Workers.Tests/Sampling/OtherNetworkTraceTests.cs",
        "tests/DyDiT.Eval.Workers.Tests/Sampling/SamplerTests.cs",
        "tests/DyDiT.Eval.Workers.Tests/SparseDitTests.cs",
        "tests/DyDiT.Eval.Workers.Tests/VaeDecoderTests.cs",
    ];

    [Fact]
    public void DependsOnlyOnLowerLayers() => Architecture.AssertProjectReferences("dydit-eval",
        "DyDiT.Eval.Engine", "DyDiT.Eval.Reference", "DyDiT.Eval.Workers", "DyDiT.Eval.Evaluation", "DyDiT.Eval.Cluster");

    [Fact]
    public void OnlyBackendsCreateConstructsBackends()
    {
        var found = Architecture.FilesConstructingBackends(Architecture.RepositoryRoot());
        var offending = found.Except(PendingConversion).ToArray();
        Assert.True(offending.Length == 0,
            "construct backends with Backends.Create(device, threads, precision), not with new CpuBackend/CudaBackend: " + string.Join(", ", offending));
        var stale = PendingConversion.Except(found).ToArray();
        Assert.True(stale.Length == 0, "no longer construct a backend; remove from LayeringTests.PendingConversion: " + string.Join(", ", stale));
    }
}
