using System.Diagnostics;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Metrics;

namespace DyDiT.Eval.Bench;

/// <summary>
/// Precision/recall (ADM's k = 3 manifolds, 10000-blocks) on pool-like 2048-d features: ours in ADM's fp16 mode vs a
/// numpy port of ADM's ManifoldEstimator, side by side on the same features; time and peak memory of each process.
/// </summary>
internal static class PrecisionRecallBenchmark
{
    public static int Run(int threads, bool quick)
    {
        const int dim = 2048, nRef = 10_000;
        int[] sampleCounts = quick ? [10_000] : [10_000, 50_000];
        Console.WriteLine($"Precision/recall, {dim}-d pool-like features, {threads} thread(s); ours: --pr-distances fp16 (ADM-exact); " +
                          "peer: ADM's ManifoldEstimator in numpy (float32 distances)");
        Console.WriteLine($"{"case",-14} {"ours s",9} {"peer s",9} {"speed-up",9} {"ours MB",9} {"peer MB",9} {"memory",8}  precision/recall ours | peer");
        var reference = Features(nRef, seed: 1);
        foreach (int nSample in sampleCounts)
        {
            var sample = Features(nSample, seed: 2);
            var file = Path.Combine(Path.GetTempPath(), $"dydit-bench-prc-{Environment.ProcessId}.npz");
            try
            {
                using (var w = new NpzWriter(file))
                {
                    w.WriteArray<float>("ref", DType.Float32, [nRef, dim], reference);
                    w.WriteArray<float>("sample", DType.Float32, [nSample, dim], sample);
                    w.Complete();
                }
                var peer = Peers.RunJson("prc_numpy.py", ["prc", file], threads);

                using var cpu = BenchDevice.Create(threads);
                // Hand back what the harness used (feature generation, the peer's input file) before measuring.
                System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                // Our peak: the process's resident set sampled every 20 ms while precision/recall runs (the harness's own
                // earlier peaks, e.g. writing the peer's input file, are not ours to count).
                long peakBytes = 0;
                using var stop = new CancellationTokenSource();
                var sampler = Task.Run(async () =>
                {
                    using var self = Process.GetCurrentProcess();
                    while (!stop.IsCancellationRequested)
                    {
                        self.Refresh();
                        peakBytes = Math.Max(peakBytes, self.WorkingSet64);
                        try { await Task.Delay(20, stop.Token); } catch (OperationCanceledException) { }
                    }
                });
                var sw = Stopwatch.StartNew();
                var result = PrecisionRecall.Compute(reference, sample, dim, cpu);
                double seconds = sw.Elapsed.TotalSeconds;
                stop.Cancel();
                sampler.Wait();
                double peakMb = peakBytes / (1024.0 * 1024.0);

                string label = $"{nSample / 1000}k×{nRef / 1000}k";
                if (peer is { } p)
                {
                    double ps = p.GetProperty("seconds").GetDouble(), pm = p.GetProperty("peak_rss_mb").GetDouble();
                    Console.WriteLine($"{label,-14} {seconds,9:F1} {ps,9:F1} {ps / seconds,8:F2}× {peakMb,9:F0} {pm,9:F0} {pm / peakMb,7:F1}×  " +
                                      $"{result.Precision:F4}/{result.Recall:F4} | {p.GetProperty("precision").GetDouble():F4}/{p.GetProperty("recall").GetDouble():F4}");
                }
                else
                    Console.WriteLine($"{label,-14} {seconds,9:F1} {"n/a",9} {"n/a",9} {peakMb,9:F0} {"n/a",9} {"n/a",8}  {result.Precision:F4}/{result.Recall:F4}");
                Console.WriteLine($"{"",-14} exact recomputations: {result.ExactPairs:N0} of {(long)nRef * nRef + (long)nSample * nSample + (long)nRef * nSample:N0} pairs");
            }
            finally
            {
                File.Delete(file);
            }
        }
        Console.WriteLine("Peak memory: resident set of each process while it computes, including the features themselves " +
                          "(4 bytes × N × 2048: 82 MB for 10k, 410 MB for 50k) and the runtime.");
        return 0;
    }

    /// <summary>
    /// Non-negative, 2^-10-quantised features around 1000 cluster centres (squared norms ≈ 600, like Inception pool_3),
    /// so that nearest neighbours are meaningfully closer than typical pairs.
    /// </summary>
    private static float[] Features(int n, int seed)
    {
        const int dim = 2048, clusters = 1000;
        var centres = new float[clusters * dim];
        var crng = new Random(42);
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)(-Math.Log(1 - crng.NextDouble()) * 0.4);
        var x = new float[(long)n * dim];
        Parallel.For(0, n, i =>
        {
            var rng = new Random(seed * 1_000_003 + i);
            int c = rng.Next(clusters);
            float scale = 0.6f + 0.8f * (float)rng.NextDouble();
            for (int k = 0; k < dim; k++)
            {
                float v = centres[c * dim + k] * scale + ((float)rng.NextDouble() - 0.5f) * 0.3f;
                x[(long)i * dim + k] = MathF.Round(MathF.Max(v, 0) * 1024) / 1024;
            }
        });
        return x;
    }
}
