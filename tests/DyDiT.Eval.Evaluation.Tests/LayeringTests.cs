using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

public sealed class LayeringTests
{
    [Fact]
    public void DependsOnlyOnLowerLayers() => Architecture.AssertProjectReferences("DyDiT.Eval.Evaluation", "DyDiT.Eval.Engine", "DyDiT.Eval.Reference");
}
