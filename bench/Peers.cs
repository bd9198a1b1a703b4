using System.Diagnostics;
using System.Text.Json;

namespace DyDiT.Eval.Bench;

/// <summary>How peers (Debian's python3 with numpy/torch/scipy) are started: same thread count as we use.</summary>
internal static class Peers
{
    /// <summary>Debian's interpreter, where apt puts python3-numpy (a pyenv python3 on PATH may lack it).</summary>
    public static string Python => Environment.GetEnvironmentVariable("DYDIT_PEER_PYTHON") ?? "/usr/bin/python3";

    /// <summary>Runs bench/peers/SCRIPT with the thread count pinned; returns its last stdout line as JSON, or null (and says why).</summary>
    public static JsonElement? RunJson(string script, string[] args, int threads)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "peers", script);
        var psi = new ProcessStartInfo(Python, [path, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        PinThreads(psi, threads);
        using var proc = Process.Start(psi)!;
        var stdout = proc.StandardOutput.ReadToEndAsync();
        var stderr = proc.StandardError.ReadToEndAsync();
        proc.WaitForExit();
        if (proc.ExitCode != 0)
        {
            Console.WriteLine($"peer failed ({Python} {path}): {stderr.Result.Trim()}\n  install the peers with: apt-get install -y python3-numpy python3-scipy");
            return null;
        }
        var last = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        return JsonDocument.Parse(last).RootElement.Clone();
    }

    public static void PinThreads(ProcessStartInfo psi, int threads)
    {
        foreach (var v in new[] { "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS" })
            psi.Environment[v] = threads.ToString();
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
    }
}
