using System.Reflection;
using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>DESIGN.md's layering: arrows point down the table only (Engine at the bottom, Cli at the top).</summary>
public static class Architecture
{
    private static readonly string[] Layers =
    [
        "DyDiT.Eval.Engine", "DyDiT.Eval.Reference", "DyDiT.Eval.Workers",
        "DyDiT.Eval.Evaluation", "DyDiT.Eval.Cluster", "dydit-eval",
    ];

    /// <summary>Asserts that <paramref name="assembly"/> references no project assembly outside <paramref name="allowed"/>.</summary>
    public static void AssertProjectReferences(string assembly, params string[] allowed)
    {
        var asm = Assembly.Load(assembly);
        var refs = asm.GetReferencedAssemblies().Select(a => a.Name!).Where(n => Layers.Contains(n)).ToArray();
        var forbidden = refs.Except(allowed).ToArray();
        Assert.True(forbidden.Length == 0, $"{assembly} must not depend on {string.Join(", ", forbidden)}");
    }
}
