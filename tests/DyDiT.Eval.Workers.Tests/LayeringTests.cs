using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Workers.Tests;

public sealed class LayeringTests
{
    [Fact]
    public void DependsOnlyOnLowerLayers() => Architecture.AssertProjectReferences("DyDiT.Eval.Workers", "DyDiT.Eval.Engine");
}
