using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests;

public sealed class LayeringTests
{
    [Fact]
    public void DependsOnlyOnLowerLayers() => Architecture.AssertProjectReferences("DyDiT.Eval.Cluster", "DyDiT.Eval.Engine", "DyDiT.Eval.Reference", "DyDiT.Eval.Workers", "DyDiT.Eval.Evaluation");
}
