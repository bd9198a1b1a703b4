using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

public sealed class LayeringTests
{
    [Fact]
    public void EngineDependsOnNoOtherProject() => Architecture.AssertProjectReferences("DyDiT.Eval.Engine");
}
