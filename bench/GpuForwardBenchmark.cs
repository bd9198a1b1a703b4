using System.Diagnostics;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Bench;

/// <summary>
/// DiT-XL/2 <c>forward_with_cfg</c> latency on a device, per precision: the timing line of <c>bench/gpu-check.sh</c>.
/// The weights file is any DiT-XL/2 state dict (gpu-check makes a random one with bench/peers/dit_torch.py). Prints the
/// median seconds after a warm-up, the TFLOP/s it implies, images/s for 250 guided steps, and the ratio to the official
/// code's figure on one H200 (../shared/perf/gpu-anchors.md: TF32 0.096 s at 64 rows, the sample_ddp.py default).
/// </summary>
internal static class GpuForwardBenchmark
{
    // gpu-anchors.md, DiT-XL/2 forward_with_cfg on one H200 (PyTorch 2.11), seconds at 64 / 256 rows
    private static readonly Dictionary<(Precision, int), double> Anchors = new()
    {
        [(Precision.Fp32, 64)] = 0.358, [(Precision.Tf32, 64)] = 0.096, [(Precision.Bf16, 64)] = 0.060,
        [(Precision.Fp32, 256)] = 1.363, [(Precision.Tf32, 256)] = 0.373, [(Precision.Bf16, 256)] = 0.228,
    };

    public static int Run(string device, string weights, int rows, int repeat, IReadOnlyList<Precision> precisions)
    {
        if (!File.Exists(weights))
        {
            Console.Error.WriteLine($"{weights}: file not found (a DiT-XL/2 state dict)");
            return 1;
        }
        var config = DitConfig.Preset("DiT-XL/2");
        int samples = rows / 2;
        Console.WriteLine($"DiT-XL/2 forward_with_cfg, {rows} rows ({samples} samples), {device}, median of {repeat} after 2 warm-ups");
        Console.WriteLine($"{"precision",-9} {"s",8} {"TFLOP/s",8} {"img/s",7}   {"official s",10} {"ratio",6}");
        foreach (var precision in precisions)
        {
            using var backend = Backends.Create(device, precision: precision);
            using var model = Dit.Load(weights, config, backend);
            var rng = new Random(1);
            var x = new float[rows * 4 * 32 * 32];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            var t = Enumerable.Range(0, rows).Select(i => (long)((i * 37) % 1000)).ToArray();
            var y = Enumerable.Range(0, rows).Select(i => i < samples ? (long)(i % 1000) : 1000L).ToArray();
            using var input = backend.FromHost(x, rows, 4, 32, 32);
            var host = new float[rows * 8 * 32 * 32];
            long macs = 0;
            var times = new List<double>();
            for (int r = 0; r < repeat + 2; r++)
            {
                var sw = Stopwatch.StartNew();
                var result = model.ForwardWithCfg(input, t, y, 1.5f);
                backend.Download(result.Output, host); // waits for the device
                if (r >= 2) times.Add(sw.Elapsed.TotalSeconds);
                macs = result.MultiplyAccumulates;
                result.Output.Dispose();
            }
            times.Sort();
            double s = times[times.Count / 2];
            double tflops = 2.0 * macs / s / 1e12;
            double imgs = samples / (250 * s);
            string anchor = Anchors.TryGetValue((precision, rows), out var a) ? $"{a,10:F3} {a / s,5:F2}×" : $"{"—",10} {"—",6}";
            Console.WriteLine($"{Backends.PrecisionName(precision),-9} {s,8:F4} {tflops,8:F1} {imgs,7:F2}   {anchor}");
        }
        return 0;
    }
}
