using System.Diagnostics;
using System.Text.Json;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Bench;

/// <summary>
/// sgemm GFLOP/s of our CPU backend against numpy (Debian python3-numpy) on the same machine and thread count.
/// Shapes: 2048³ and DiT-XL/2's two big Linear layers at 256 tokens × batch 2 (qkv: M=512 K=1152 N=3456;
/// mlp.fc2: M=512 K=4608 N=1152). Both sides compute out = A · Wᵀ with W in Linear's (out, in) layout and
/// report the best of R timed runs after one warm-up.
/// </summary>
internal static class SgemmBenchmark
{
    private static readonly (int M, int N, int K)[] Shapes = [(2048, 2048, 2048), (512, 3456, 1152), (512, 1152, 4608)];

    public static int Run(int threads, int repeat)
    {
        Console.WriteLine($"sgemm, fp32, {threads} thread(s), best of {repeat}; peer: numpy matmul (python3-numpy); OpenBLAS core: {CpuBackend.BlasCore}");
        var peer = RunPeer(threads, repeat);
        using var cpu = BenchDevice.Create(threads);
        Console.WriteLine();
        Console.WriteLine($"{"shape (M×N×K)",-20} {"ours GFLOP/s",13} {"numpy GFLOP/s",14} {"ours/numpy",11}");
        foreach (var (m, n, k) in Shapes)
        {
            double ours = Measure(cpu, m, n, k, repeat);
            string peerText = peer.TryGetValue((m, n, k), out var p) ? $"{p,14:F1}" : $"{"n/a",14}";
            string ratio = p > 0 ? $"{ours / p,11:F3}" : $"{"n/a",11}";
            Console.WriteLine($"{$"{m}×{n}×{k}",-20} {ours,13:F1} {peerText} {ratio}");
        }
        return 0;
    }

    private static double Measure(IBackend cpu, int m, int n, int k, int repeat)
    {
        var rng = new Random(0);
        var a = new float[m * k];
        var w = new float[n * k];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < w.Length; i++) w[i] = (float)rng.NextDouble() - 0.5f;
        using var ta = cpu.FromHost(a, m, k);
        using var tw = cpu.FromHost(w, n, k);
        using var tc = cpu.Zeros(m, n);
        cpu.Gemm(ta, false, tw, true, tc); // warm-up
        double best = double.MaxValue;
        for (int r = 0; r < repeat; r++)
        {
            var sw = Stopwatch.StartNew();
            cpu.Gemm(ta, false, tw, true, tc);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * m * n * k / best / 1e9;
    }

    private static Dictionary<(int, int, int), double> RunPeer(int threads, int repeat)
    {
        var result = new Dictionary<(int, int, int), double>();
        var script = Path.Combine(AppContext.BaseDirectory, "peers", "sgemm_numpy.py");
        var psi = new ProcessStartInfo(Peers.Python, [script, repeat.ToString(), .. Shapes.Select(s => $"{s.M}x{s.N}x{s.K}")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Peers.PinThreads(psi, threads);
        using var proc = Process.Start(psi)!;
        string stdout = proc.StandardOutput.ReadToEnd();
        string stderr = proc.StandardError.ReadToEnd();
        proc.WaitForExit();
        if (proc.ExitCode != 0)
        {
            Console.WriteLine($"peer failed ({Peers.Python} {script}): {stderr.Trim()}\n  install it with: apt-get install -y python3-numpy");
            return result;
        }
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            result[(r.GetProperty("m").GetInt32(), r.GetProperty("n").GetInt32(), r.GetProperty("k").GetInt32())] = r.GetProperty("gflops").GetDouble();
        }
        return result;
    }
}
