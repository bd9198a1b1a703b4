using DyDiT.Eval.Engine.LinearAlgebra;
using System.Diagnostics;
using System.Text.Json;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Metrics;

namespace DyDiT.Eval.Bench;

/// <summary>
/// Fréchet distance on 2048-d covariances (ours: Cholesky congruence + eigenvalues; peer: ADM's scipy sqrtm) and
/// the Inception Score on 50,000 × 1008 logits (peer: ADM's numpy code), side by side on the same inputs.
/// </summary>
internal static class MetricsBenchmark
{
    public static int Fid(int threads, int repeat)
    {
        const int d = 2048;
        // Realistic pool-feature covariances: a few hundred strong directions plus a full-rank floor, as 50k samples give.
        var (mu1, s1) = Covariance(d, seed: 1);
        var (mu2, s2) = Covariance(d, seed: 2);
        var file = Path.Combine(Path.GetTempPath(), $"dydit-bench-fid-{Environment.ProcessId}.npz");
        try
        {
            using (var w = new NpzWriter(file))
            {
                w.WriteArray<double>("mu1", DType.Float64, [d], mu1);
                w.WriteArray<double>("sigma1", DType.Float64, [d, d], s1);
                w.WriteArray<double>("mu2", DType.Float64, [d], mu2);
                w.WriteArray<double>("sigma2", DType.Float64, [d, d], s2);
                w.Complete();
            }
            Console.WriteLine($"Fréchet distance, {d}-d, float64, {threads} thread(s); peer: scipy.linalg.sqrtm as ADM calls it (python3-scipy)");
            var peer = Peers.RunJson("metrics_numpy.py", ["fid", file], threads);
            using var cpu = BenchDevice.Create(threads); // on cpu: sets OpenBLAS's thread count, which the host linear algebra uses too
            var a = new FeatureStatistics(mu1, false, s1, d, null);
            var b = new FeatureStatistics(mu2, false, s2, d, null);
            double best = double.MaxValue, fid = 0;
            for (int r = 0; r < repeat; r++)
            {
                var sw = Stopwatch.StartNew();
                fid = FrechetDistance.Compute(a, b).Distance;
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            PrintRow("FID 2048-d", best, peer?.GetProperty("seconds").GetDouble());
            if (peer is { } p)
            {
                double theirs = p.GetProperty("fid").GetDouble();
                Console.WriteLine($"  FID ours {PythonFloat.Repr(fid)}, scipy {PythonFloat.Repr(theirs)}, relative difference {Math.Abs(fid - theirs) / Math.Abs(theirs):e2}");
            }
        }
        finally
        {
            File.Delete(file);
        }
        return 0;
    }

    public static int Is(int threads, int repeat)
    {
        const int n = 50_000, classes = 1008;
        var rng = new Random(3);
        var logits = new float[n * classes];
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)(rng.NextDouble() * 12 - 6);
        for (int r = 0; r < n; r++) logits[r * classes + rng.Next(classes)] += 9; // a confident class per sample
        var file = Path.Combine(Path.GetTempPath(), $"dydit-bench-is-{Environment.ProcessId}.npz");
        try
        {
            using (var w = new NpzWriter(file))
            {
                w.WriteArray<float>("logits", DType.Float32, [n, classes], logits);
                w.Complete();
            }
            Console.WriteLine($"Inception Score, {n} × {classes}, splits of 5000, {threads} thread(s); peer: ADM's numpy code");
            var peer = Peers.RunJson("metrics_numpy.py", ["is", file], threads);
            double best = double.MaxValue, score = 0;
            for (int r = 0; r < repeat; r++)
            {
                var sw = Stopwatch.StartNew();
                score = InceptionScore.FromLogits(logits, classes).Score;
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            PrintRow("IS 50k", best, peer?.GetProperty("seconds").GetDouble());
            if (peer is { } p)
                Console.WriteLine($"  IS ours {PythonFloat.Repr(score)}, numpy {PythonFloat.Repr(p.GetProperty("inception_score").GetDouble())}");
        }
        finally
        {
            File.Delete(file);
        }
        return 0;
    }

    private static (double[] Mu, double[] Sigma) Covariance(int d, int seed)
    {
        var rng = new Random(seed);
        const int k = 256;
        var basis = new double[d * k];
        for (int i = 0; i < basis.Length; i++) basis[i] = (rng.NextDouble() - 0.5) * 0.2;
        var sigma = new double[d * d];
        HostLinearAlgebra.GemmF64(basis, false, basis, true, sigma, d, d, k);
        for (int i = 0; i < d; i++) sigma[i * d + i] += 0.01 + 0.02 * rng.NextDouble();
        var mu = new double[d];
        for (int i = 0; i < d; i++) mu[i] = rng.NextDouble() * 0.5;
        return (mu, sigma);
    }

    internal static void PrintRow(string what, double ours, double? peer)
    {
        Console.WriteLine();
        Console.WriteLine($"{"case",-16} {"ours s",10} {"peer s",10} {"speed-up",9}");
        string p = peer is double s ? $"{s,10:F3}" : $"{"n/a",10}";
        string ratio = peer is double t ? $"{t / ours,8:F1}×" : $"{"n/a",9}";
        Console.WriteLine($"{what,-16} {ours,10:F3} {p} {ratio}");
    }
}
