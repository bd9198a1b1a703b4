using System.Diagnostics;

namespace DyDiT.Eval.Bench;

/// <summary>How peers (Debian's python3 with numpy/torch/scipy) are started: same thread count as we use.</summary>
internal static class Peers
{
    /// <summary>Debian's interpreter, where apt puts python3-numpy (a pyenv python3 on PATH may lack it).</summary>
    public static string Python => Environment.GetEnvironmentVariable("DYDIT_PEER_PYTHON") ?? "/usr/bin/python3";

    public static void PinThreads(ProcessStartInfo psi, int threads)
    {
        foreach (var v in new[] { "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS" })
            psi.Environment[v] = threads.ToString();
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
    }
}
