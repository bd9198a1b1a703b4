using System.Diagnostics;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

public sealed class EnvironmentTests
{
    [Fact]
    public void HelpListsTheVerbs()
    {
        var r = CliProcess.Run("--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("inspect", r.Stdout);
        Assert.Contains("doctor", r.Stdout);
    }

    [Fact]
    public void UnknownVerbIsUsageError() => Assert.Equal(2, CliProcess.Run("frobnicate").ExitCode);

    [Fact]
    public void DoctorFindsOpenBlas()
    {
        var r = CliProcess.Run("doctor", "--threads", "1");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("1 thread", r.Stdout);
    }

    [Fact]
    public void MissingOpenBlasExitsThreeWithTheInstallLine()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll");
        var psi = new ProcessStartInfo("dotnet", [dll, "doctor"]) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["DYDIT_OPENBLAS"] = "/nonexistent/libopenblas.so.0";
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(3, p.ExitCode);
        Assert.Contains("apt-get install -y libopenblas0-pthread", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }
}
