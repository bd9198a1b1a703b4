using System.Diagnostics;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>Runs the real <c>dydit-eval</c> binary (built next to the tests) as a child process.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => RunWith([], args);

    /// <summary>Runs with a longer limit than the default 5 minutes (whole pipelines under a loaded CI machine).</summary>
    public static Result RunLong(TimeSpan timeout, params string[] args) => Execute([], args, timeout);

    /// <summary>Runs with extra environment variables (e.g. DYDIT_CACHE).</summary>
    public static Result RunWith((string Name, string Value)[] environment, params string[] args) =>
        Execute(environment, args, TimeSpan.FromMinutes(5));

    private static Result Execute((string Name, string Value)[] environment, string[] args, TimeSpan timeout)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll");
        var psi = new ProcessStartInfo("dotnet", [dll, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["NO_COLOR"] = "1";
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"dydit-eval {string.Join(' ', args)} did not finish in {timeout.TotalSeconds:F0} s");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
