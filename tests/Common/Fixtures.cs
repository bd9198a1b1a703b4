namespace DyDiT.Eval.Tests.Common;

/// <summary>Locates the shared oracle data (<c>../shared/fixtures</c> next to the checkout).</summary>
public static class Fixtures
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    /// <summary>Absolute path of the fixtures folder; DYDIT_FIXTURES overrides the search.</summary>
    public static string Root => RootLazy.Value;

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        var env = Environment.GetEnvironmentVariable("DYDIT_FIXTURES");
        if (!string.IsNullOrEmpty(env)) return System.IO.Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            foreach (var candidate in new[] { System.IO.Path.Combine(dir.FullName, "shared", "fixtures"), System.IO.Path.Combine(dir.FullName, "..", "shared", "fixtures") })
            {
                if (Directory.Exists(candidate) && File.Exists(System.IO.Path.Combine(candidate, "README.md")))
                    return System.IO.Path.GetFullPath(candidate);
            }
        }
        throw new DirectoryNotFoundException("shared/fixtures not found above " + AppContext.BaseDirectory + "; set DYDIT_FIXTURES");
    }
}
