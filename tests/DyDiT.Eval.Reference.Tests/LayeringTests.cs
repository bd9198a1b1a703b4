using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Reference.Tests;

public sealed class LayeringTests
{
    [Fact]
    public void DependsOnlyOnLowerLayers() => Architecture.AssertProjectReferences("DyDiT.Eval.Reference", "DyDiT.Eval.Engine");
}
