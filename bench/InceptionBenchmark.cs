using System.Diagnostics;
using System.Text.Json;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Evaluation.Inception;

namespace DyDiT.Eval.Bench;

/// <summary>
/// Throughput of the FID Inception v3 forward pass (images/s) on the CPU backend, with random weights of the right
/// shapes (speed does not depend on the values as long as they stay finite and normal), and a per-layer breakdown of
/// the convolutions (GFLOP/s of each distinct convolution shape at the same batch). Peer: the same network in Debian's
/// python3-torch (bench/peers/inception_torch.py: pytorch-fid's path, channels_last, same threads, same weights file),
/// run back to back; median and best of the runs, as a ratio.
/// </summary>
internal static class InceptionBenchmark
{
    private const double GmacPerImage = 5.71;

    public static int Run(int threads, int repeat, int batch, bool layers)
    {
        repeat = Math.Max(repeat, 5);
        Console.WriteLine($"FID Inception v3, uint8 256×256 → 299 → network, fp32, {threads} thread(s), batch {batch}, {repeat} runs after a warm-up; " +
                          $"OpenBLAS core: {CpuBackend.BlasCore}");
        string? weights = FixtureWeights();
        Console.WriteLine(weights != null
            ? "weights: fixtures/inception/pt_inception_fixture_zip.pth (random values, the official layout), loaded by both sides"
            : "weights: random (fixtures not found: set DYDIT_FIXTURES; the torch peer needs them and is skipped)");
        try
        {
            using var cpu = BenchDevice.Create(threads);
            var sw = Stopwatch.StartNew();
            using var net = weights != null ? FidInceptionV3.Load(weights, cpu) : FidInceptionV3.FromStateDict(RandomWeights(), "random weights", cpu);
            Console.WriteLine($"weights folded and packed in {sw.Elapsed.TotalSeconds:F2} s");

            var rng = new Random(1);
            var images = new byte[(long)batch * 256 * 256 * 3];
            rng.NextBytes(images);
            var preprocess = new InceptionPreprocessing(PreprocessMode.Adm);
            var input = new float[InceptionPreprocessing.OutputLength(batch)];
            void Once()
            {
                preprocess.Apply(images, batch, 256, 256, input);
                net.Run(input, batch);
            }
            Once(); // warm-up
            var ours = new List<double>();
            for (int r = 0; r < repeat; r++)
            {
                sw.Restart();
                Once();
                ours.Add(sw.Elapsed.TotalSeconds);
            }

            int[] peerBatches = new[] { 4, 8, 16, batch }.Distinct().Order().ToArray();
            JsonElement? peer = weights == null ? null
                : Peers.RunJson("inception_torch.py", ["inception", weights, string.Join(",", peerBatches), repeat.ToString()], threads);
            Console.WriteLine();
            Console.WriteLine($"{"",-34} {"median img/s",13} {"best img/s",11}");
            Console.WriteLine($"{$"ours, batch {batch} (ADM preprocessing)",-34} {batch / Median(ours),13:F2} {batch / ours.Min(),11:F2}");
            if (peer is { } p)
            {
                double bestMedian = 0, bestMin = 0;
                foreach (var entry in p.GetProperty("runs").EnumerateObject())
                {
                    int b = int.Parse(entry.Name);
                    var runs = entry.Value.EnumerateArray().Select(e => e.GetDouble()).ToList();
                    bestMedian = Math.Max(bestMedian, b / Median(runs));
                    bestMin = Math.Max(bestMin, b / runs.Min());
                    Console.WriteLine($"{$"torch {p.GetProperty("torch").GetString()} channels_last, batch {b}",-34} {b / Median(runs),13:F2} {b / runs.Min(),11:F2}");
                }
                Console.WriteLine($"{"ratio ours / torch's best batch",-34} {batch / Median(ours) / bestMedian,12:F2}× {batch / ours.Min() / bestMin,10:F2}×");
            }
            else if (weights != null)
                Console.WriteLine("torch peer did not run (install it with: apt-get install -y python3-torch)");
            if (layers) ConvBreakdown(cpu, batch, repeat);
        }
        finally
        {
            if (weights != null) File.Delete(weights);
        }
        return 0;
    }

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>The fixture weights (gzip'd in shared/fixtures) decompressed to a temporary file, or null.</summary>
    private static string? FixtureWeights()
    {
        string root = Environment.GetEnvironmentVariable("DYDIT_FIXTURES") ?? Path.Combine("..", "shared", "fixtures");
        string gz = Path.Combine(root, "inception", "pt_inception_fixture_zip.pth.gz");
        if (!File.Exists(gz)) return null;
        string target = Path.Combine(Path.GetTempPath(), $"dydit-bench-inception-{Environment.ProcessId}.pth");
        using var input = new System.IO.Compression.GZipStream(File.OpenRead(gz), System.IO.Compression.CompressionMode.Decompress);
        using var output = File.Create(target);
        input.CopyTo(output);
        return target;
    }

    // Every convolution of the network: input side, Cin, Cout, KH, KW, stride, pad (h, w), how many times it occurs.
    private static readonly (string Name, int Side, int Cin, int Cout, int KH, int KW, int S, int PH, int PW, int Count)[] Convs =
    [
        ("Conv2d_1a_3x3", 299, 3, 32, 3, 3, 2, 0, 0, 1),
        ("Conv2d_2a_3x3", 149, 32, 32, 3, 3, 1, 0, 0, 1),
        ("Conv2d_2b_3x3", 147, 32, 64, 3, 3, 1, 1, 1, 1),
        ("Conv2d_3b_1x1", 73, 64, 80, 1, 1, 1, 0, 0, 1),
        ("Conv2d_4a_3x3", 73, 80, 192, 3, 3, 1, 0, 0, 1),
        ("5x 1x1 192→64", 35, 192, 64, 1, 1, 1, 0, 0, 2),
        ("5x 1x1 192→48", 35, 192, 48, 1, 1, 1, 0, 0, 1),
        ("5x 1x1 192→32", 35, 192, 32, 1, 1, 1, 0, 0, 1),
        ("5x 1x1 256/288→64", 35, 288, 64, 1, 1, 1, 0, 0, 6),
        ("5x 1x1 256/288→48", 35, 288, 48, 1, 1, 1, 0, 0, 2),
        ("5x 5x5 48→64", 35, 48, 64, 5, 5, 1, 2, 2, 3),
        ("5x 3x3 64→96", 35, 64, 96, 3, 3, 1, 1, 1, 4),
        ("5x 3x3 96→96", 35, 96, 96, 3, 3, 1, 1, 1, 3),
        ("6a 3x3/2 288→384", 35, 288, 384, 3, 3, 2, 0, 0, 1),
        ("6a 3x3/2 96→96", 35, 96, 96, 3, 3, 2, 0, 0, 1),
        ("6x 1x1 768→192", 17, 768, 192, 1, 1, 1, 0, 0, 10),
        ("6x 1x1 768→160", 17, 768, 160, 1, 1, 1, 0, 0, 6),
        ("6x 1x7 160→160", 17, 160, 160, 1, 7, 1, 0, 3, 9),
        ("6x 1x7 160→192", 17, 160, 192, 1, 7, 1, 0, 3, 9),
        ("7a 3x3/2 192→320", 17, 192, 320, 3, 3, 2, 0, 0, 1),
        ("7a 3x3/2 192→192", 17, 192, 192, 3, 3, 2, 0, 0, 1),
        ("7x 1x1 1280/2048→320", 8, 2048, 320, 1, 1, 1, 0, 0, 2),
        ("7x 1x1 1280/2048→384", 8, 2048, 384, 1, 1, 1, 0, 0, 2),
        ("7x 1x1 1280/2048→448", 8, 2048, 448, 1, 1, 1, 0, 0, 2),
        ("7x 1x1 1280/2048→192", 8, 2048, 192, 1, 1, 1, 0, 0, 2),
        ("7x 1x3 384→384", 8, 384, 384, 1, 3, 1, 0, 1, 8),
        ("7x 3x3 448→384", 8, 448, 384, 3, 3, 1, 1, 1, 2),
    ];

    // Times each shape once per repeat (best of); c7 and Cin of 5c/5d/7b are approximated by one representative.
    private static void ConvBreakdown(IBackend cpu, int batch, int repeat)
    {
        Console.WriteLine();
        Console.WriteLine($"{"convolution",-24} {"×",3} {"ms each",9} {"GFLOP/s",8} {"ms total",9}");
        double total = 0;
        foreach (var c in Convs)
        {
            int oh = Conv2dParams.OutputSize(c.Side, c.KH, c.S, c.PH), ow = Conv2dParams.OutputSize(c.Side, c.KW, c.S, c.PW);
            using var x = cpu.FromHost(Fill(batch * c.Side * c.Side * c.Cin), batch, c.Side, c.Side, c.Cin);
            using var w = cpu.PackConv2dWeight(Fill(c.Cout * c.Cin * c.KH * c.KW), c.Cout, c.Cin, c.KH, c.KW);
            using var b = cpu.FromHost(Fill(c.Cout), c.Cout);
            using var y = cpu.Zeros(batch, oh, ow, c.Cout);
            var p = new Conv2dParams(c.S, c.S, c.PH, c.PW, Relu: true);
            cpu.Conv2d(x, w, b, p, y);
            double best = double.MaxValue;
            for (int r = 0; r < repeat; r++)
            {
                var sw = Stopwatch.StartNew();
                cpu.Conv2d(x, w, b, p, y);
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            double flops = 2.0 * batch * oh * ow * c.Cout * c.Cin * c.KH * c.KW;
            total += best * c.Count;
            Console.WriteLine($"{c.Name,-24} {c.Count,3} {best * 1e3,9:F2} {flops / best / 1e9,8:F1} {best * c.Count * 1e3,9:F1}");
        }
        Console.WriteLine($"{"sum of convolutions",-24} {"",3} {"",9} {"",8} {total * 1e3,9:F1}");
    }

    private static float[] Fill(int n)
    {
        var rng = new Random(n);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() - 0.5) * 0.1f;
        return v;
    }

    // Keys and shapes are taken from the network itself: a dictionary that answers every request with a tensor of
    // the requested shape would need the loader's internals, so the shapes are re-derived here from the key names.
    private static Dictionary<string, StoredTensor> RandomWeights()
    {
        var d = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        void Conv(string name, int cin, int cout, int kh, int kw)
        {
            float scale = 1f / MathF.Sqrt(cin * kh * kw);
            d[$"{name}.conv.weight"] = new HostTensor([cout, cin, kh, kw], seed => (float)(seed.NextDouble() * 2 - 1) * scale * 1.7f);
            d[$"{name}.bn.weight"] = new HostTensor([cout], _ => 1f);
            d[$"{name}.bn.bias"] = new HostTensor([cout], _ => 0f);
            d[$"{name}.bn.running_mean"] = new HostTensor([cout], _ => 0f);
            d[$"{name}.bn.running_var"] = new HostTensor([cout], _ => 1f);
        }
        Conv("Conv2d_1a_3x3", 3, 32, 3, 3);
        Conv("Conv2d_2a_3x3", 32, 32, 3, 3);
        Conv("Conv2d_2b_3x3", 32, 64, 3, 3);
        Conv("Conv2d_3b_1x1", 64, 80, 1, 1);
        Conv("Conv2d_4a_3x3", 80, 192, 3, 3);
        foreach (var (name, cin, pf) in new[] { ("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64) })
        {
            Conv($"{name}.branch1x1", cin, 64, 1, 1);
            Conv($"{name}.branch5x5_1", cin, 48, 1, 1);
            Conv($"{name}.branch5x5_2", 48, 64, 5, 5);
            Conv($"{name}.branch3x3dbl_1", cin, 64, 1, 1);
            Conv($"{name}.branch3x3dbl_2", 64, 96, 3, 3);
            Conv($"{name}.branch3x3dbl_3", 96, 96, 3, 3);
            Conv($"{name}.branch_pool", cin, pf, 1, 1);
        }
        Conv("Mixed_6a.branch3x3", 288, 384, 3, 3);
        Conv("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1);
        Conv("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3);
        Conv("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3);
        foreach (var (name, c7) in new[] { ("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192) })
        {
            Conv($"{name}.branch1x1", 768, 192, 1, 1);
            Conv($"{name}.branch7x7_1", 768, c7, 1, 1);
            Conv($"{name}.branch7x7_2", c7, c7, 1, 7);
            Conv($"{name}.branch7x7_3", c7, 192, 7, 1);
            Conv($"{name}.branch7x7dbl_1", 768, c7, 1, 1);
            Conv($"{name}.branch7x7dbl_2", c7, c7, 7, 1);
            Conv($"{name}.branch7x7dbl_3", c7, c7, 1, 7);
            Conv($"{name}.branch7x7dbl_4", c7, c7, 7, 1);
            Conv($"{name}.branch7x7dbl_5", c7, 192, 1, 7);
            Conv($"{name}.branch_pool", 768, 192, 1, 1);
        }
        Conv("Mixed_7a.branch3x3_1", 768, 192, 1, 1);
        Conv("Mixed_7a.branch3x3_2", 192, 320, 3, 3);
        Conv("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1);
        Conv("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7);
        Conv("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1);
        Conv("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3);
        foreach (var (name, cin) in new[] { ("Mixed_7b", 1280), ("Mixed_7c", 2048) })
        {
            Conv($"{name}.branch1x1", cin, 320, 1, 1);
            Conv($"{name}.branch3x3_1", cin, 384, 1, 1);
            Conv($"{name}.branch3x3_2a", 384, 384, 1, 3);
            Conv($"{name}.branch3x3_2b", 384, 384, 3, 1);
            Conv($"{name}.branch3x3dbl_1", cin, 448, 1, 1);
            Conv($"{name}.branch3x3dbl_2", 448, 384, 3, 3);
            Conv($"{name}.branch3x3dbl_3a", 384, 384, 1, 3);
            Conv($"{name}.branch3x3dbl_3b", 384, 384, 3, 1);
            Conv($"{name}.branch_pool", cin, 192, 1, 1);
        }
        d["fc.weight"] = new HostTensor([1008, 2048], r => (float)(r.NextDouble() - 0.5) * 0.05f);
        d["fc.bias"] = new HostTensor([1008], _ => 0f);
        return d;
    }

    /// <summary>A float32 tensor generated on demand.</summary>
    private sealed class HostTensor(long[] shape, Func<Random, float> value) : StoredTensor("", shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination)
        {
            var rng = new Random((int)ElementCount);
            var bytes = new byte[ElementCount * sizeof(float)];
            for (long i = 0; i < ElementCount; i++) BitConverter.TryWriteBytes(bytes.AsSpan((int)(i * 4)), value(rng));
            destination.Write(bytes);
        }
    }
}
