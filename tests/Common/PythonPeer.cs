using System.Diagnostics;
using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// Debian's python3 with numpy, the independent peer for file-format tests. With CI=true a missing peer fails
/// the test (CI must not silently skip); locally the test returns early and says why.
/// </summary>
public static class PythonPeer
{
    public const string Interpreter = "/usr/bin/python3";

    private static readonly Lazy<string?> Missing = new(() =>
    {
        if (!File.Exists(Interpreter)) return $"{Interpreter} not found";
        var (code, _, err) = Execute("import numpy", [], TimeSpan.FromSeconds(60));
        return code == 0 ? null : $"numpy is not importable by {Interpreter}: {err.Trim()}";
    });

    /// <summary>True when python3 + numpy are there; false (local runs only) when the test should stop.</summary>
    public static bool Available()
    {
        var why = Missing.Value;
        if (why == null) return true;
        if (Environment.GetEnvironmentVariable("CI") == "true")
            Assert.Fail($"{why}; CI needs it: apt-get install -y python3-numpy");
        Console.WriteLine($"skipping numpy peer check: {why} (apt-get install -y python3-numpy)");
        return false;
    }

    /// <summary>Runs a python snippet with arguments; fails the test on a non-zero exit. Returns stdout.</summary>
    public static string Run(string script, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var (code, stdout, stderr) = Execute(script, args, timeout ?? TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"python failed ({code}): {stderr}");
        return stdout;
    }

    private static (int Code, string Stdout, string Stderr) Execute(string script, IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(Interpreter, ["-c", script, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["OPENBLAS_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"python did not finish within {timeout}");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
