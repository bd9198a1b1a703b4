using System.Reflection;
using System.Text.RegularExpressions;
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

    private static readonly Regex BackendConstruction = new(
        @"new\s+(?:DyDiT\.Eval\.Engine\.Backends\.(?:Cpu|Cuda)\.)?(?:CpuBackend|CudaBackend)\s*\(|\b(?:CpuBackend|CudaBackend)\s+\w+\s*=\s*new\s*\(",
        RegexOptions.Compiled);

    /// <summary>The checkout's root (the folder holding DyDiT.Eval.sln), searched upwards from the test binaries.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DyDiT.Eval.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("DyDiT.Eval.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// The C# files (relative paths, '/'-separated) outside <c>Engine/Backends</c> that construct a backend themselves
    /// (a new-expression of CpuBackend or CudaBackend, target-typed included) instead of calling
    /// <c>Backends.Create</c>, the one place a backend is made (DESIGN.md). bin/ and obj/ are skipped.
    /// </summary>
    public static IReadOnlyList<string> FilesConstructingBackends(string root)
    {
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            var parts = rel.Split('/');
            if (parts.Any(p => p is "bin" or "obj" or ".git")) continue;
            if (rel.StartsWith("Engine/Backends/", StringComparison.Ordinal)) continue;
            var text = File.ReadAllText(file);
            if (BackendConstruction.IsMatch(text)) found.Add(rel);
        }
        found.Sort(StringComparer.Ordinal);
        return found;
    }
}
