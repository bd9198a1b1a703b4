using System.Diagnostics;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Bench;

/// <summary>
/// DiT forward latency at 256×256 (32×32×4 latents): DiT-S/2 batch 8 and DiT-XL/2 batch 2, ours vs the same network in
/// Debian's python3-torch (bench/peers/dit_torch.py, official key names, same random weights file, same threads,
/// OMP_WAIT_POLICY=PASSIVE), back to back; median of the runs, as a ratio.
/// </summary>
internal static class DitBenchmark
{
    public static int Run(int threads, int repeat)
    {
        repeat = Math.Max(repeat, 5);
        Console.WriteLine($"DiT forward at 256×256, fp32, {threads} thread(s), median of {repeat} after a warm-up; OpenBLAS core: {CpuBackend.BlasCore}");
        Console.WriteLine($"{"model",-18} {"ours s",9} {"torch s",9} {"speed-up",9}   ours G multiply-adds");
        foreach (var (name, batch) in new[] { ("DiT-S/2", 8), ("DiT-XL/2", 2) })
        {
            var config = DitConfig.Preset(name);
            string weights = Path.Combine(Path.GetTempPath(), $"dydit-bench-{name.Replace('/', '_')}-{Environment.ProcessId}.pt");
            try
            {
                var peer = Peers.RunJson("dit_torch.py",
                    ["dit", config.Depth.ToString(), config.HiddenSize.ToString(), config.PatchSize.ToString(), config.NumHeads.ToString(),
                     batch.ToString(), repeat.ToString(), weights], threads);
                if (peer is null || !File.Exists(weights))
                {
                    Console.WriteLine($"{name,-18} torch peer did not run (apt-get install -y python3-torch); skipped");
                    continue;
                }
                using var cpu = BenchDevice.Create(threads);
                using var model = Dit.Load(weights, config, cpu);
                var rng = new Random(1);
                var x = new float[batch * 4 * 32 * 32];
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
                var t = Enumerable.Range(0, batch).Select(_ => (long)rng.Next(1000)).ToArray();
                var y = Enumerable.Range(0, batch).Select(_ => (long)rng.Next(1000)).ToArray();
                using var input = cpu.FromHost(x, batch, 4, 32, 32);
                long macs = 0;
                model.Forward(input, t, y).Output.Dispose(); // warm-up
                var ours = new List<double>();
                for (int r = 0; r < repeat; r++)
                {
                    var sw = Stopwatch.StartNew();
                    var result = model.Forward(input, t, y);
                    ours.Add(sw.Elapsed.TotalSeconds);
                    macs = result.MultiplyAccumulates;
                    result.Output.Dispose();
                }
                var theirs = peer.Value.GetProperty("runs").EnumerateArray().Select(e => e.GetDouble()).ToList();
                double o = Median(ours), p = Median(theirs);
                Console.WriteLine($"{name + " batch " + batch,-18} {o,9:F3} {p,9:F3} {p / o,8:F2}×   {macs / 1e9,8:F1}");
            }
            finally
            {
                File.Delete(weights);
            }
        }
        return 0;
    }

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
