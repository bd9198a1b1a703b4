using System.Diagnostics;
using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Bench;

/// <summary>
/// DyDiT against the dense DiT of the same shape on the CPU backend: one forward of a batch (default 2, i.e. one
/// CFG pair) of 256² latents (32×32×4) with random weights. The routers get zero weights and biases of ±4, which
/// forces a chosen share of heads and MLP channel groups off in every block (head / group 0 stays on, as always); the
/// token router keeps random weights and its output bias is calibrated so that the chosen share of tokens skips the
/// MLP. Prints the executed multiply-accumulates of each network and the measured time (median and best of R runs,
/// interleaved, after a warm-up), and their ratios; plus DyDiT with every router on, the cost of the routing itself.
/// Next to wall time it reports the process's CPU time per run, which other processes on a shared machine disturb
/// far less (with --threads 1 it is the work itself; with more threads it includes OpenBLAS's spinning).
/// </summary>
internal static class DyDitBenchmark
{
    public static int Run(int threads, int repeat, int batch, string model, double off)
    {
        repeat = Math.Max(repeat, 5);
        var config = DitConfig.Preset(model, inputSize: 32);
        Console.WriteLine($"{model} @256² (latent 32×32×4, T = {config.Tokens}), batch {batch}, fp32, {threads} thread(s), {repeat} runs after a warm-up; " +
                          $"OpenBLAS core: {CpuBackend.BlasCore}");
        Console.WriteLine($"forced sparsity: {off:P0} of the routed heads and MLP groups off in every block, token router calibrated to {off:P0} of the tokens");

        using var cpu = BenchDevice.Create(threads);
        var sw = Stopwatch.StartNew();
        var weights = RandomWeights(config, off, seed: 1);
        using var dit = Dit.FromStateDict(weights.Where(kv => !IsRouterKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal), "random DiT", config, cpu);
        using var dydit = DyDit.FromStateDict(weights, "random DyDiT", config, cpu);
        Console.WriteLine($"random weights generated and loaded in {sw.Elapsed.TotalSeconds:F1} s");

        var rng = new Random(2);
        var latents = new float[batch * 4 * 32 * 32];
        for (int i = 0; i < latents.Length; i++) latents[i] = (float)Gaussian(rng);
        using var x = cpu.FromHost(latents, batch, 4, 32, 32);
        var t = Enumerable.Repeat(500L, batch).ToArray();
        var y = Enumerable.Range(0, batch).Select(i => (long)(i * 337 % 1000)).ToArray();

        var tokenBias = CalibrateTokenRouters(cpu, dydit, x, t, y, off);
        DyDitForwardResult Sparse() => dydit.Forward(x, t, y);

        // dense and sparse interleaved, so that load from other processes hits both alike
        using (var warm = dit.Forward(x, t, y)) { }
        DyDitRouting routing;
        long sparseMacs, denseMacs;
        using (var warm = Sparse())
        {
            routing = warm.Routing;
            sparseMacs = warm.MultiplyAccumulates;
            denseMacs = warm.DenseMultiplyAccumulates;
        }
        var dense = new Timings();
        var sparse = new Timings();
        long ditMacs = 0;
        for (int r = 0; r < repeat; r++)
        {
            dense.Measure(() => { using var d = dit.Forward(x, t, y); ditMacs = d.MultiplyAccumulates; });
            sparse.Measure(() => { using var s = Sparse(); });
        }
        if (ditMacs != denseMacs) throw new InvalidOperationException($"DiT executed {ditMacs} MACs, DyDiT reports a dense count of {denseMacs}");

        // every router on: same work as DiT plus the routers, gathers and block bookkeeping
        SetAllOn(cpu, dydit);
        var allOn = new Timings();
        long allOnMacs;
        using (var warm = dydit.Forward(x, t, y)) allOnMacs = warm.MultiplyAccumulates;
        for (int r = 0; r < repeat; r++)
        {
            allOn.Measure(() => { using var s = dydit.Forward(x, t, y); });
            dense.Measure(() => { using var d = dit.Forward(x, t, y); }); // more dense runs, next to these
        }

        double heads = 1 - routing.AttnMasks.Average(v => (double)v), groups = 1 - routing.MlpMasks.Average(v => (double)v);
        double tokens = 1 - routing.TokenSelect.Average(v => (double)v);
        Console.WriteLine($"achieved: {heads:P1} of heads off, {groups:P1} of MLP groups off, {tokens:P1} of token MLP passes skipped " +
                          $"(token bias range {tokenBias.Min():F3} … {tokenBias.Max():F3})");
        var (attn, mlp) = DyDitRouting.BlockMultiplyAccumulates(config);
        Console.WriteLine($"loss.py activate rate (attention + MLP share executed): {routing.ActivateRatio(attn, mlp):F4}");
        Console.WriteLine();
        Console.WriteLine($"{"",-24} {"GMACs",8} {"MAC ratio",9} | {"wall: median s",14} {"best s",7} {"ratio med",9} {"best",6} | {"CPU: median s",13} {"best s",7} {"ratio med",9} {"best",6}");
        Row("DiT (dense)", ditMacs, dense);
        Row("DyDiT, routers all on", allOnMacs, allOn);
        Row("DyDiT, sparse", sparseMacs, sparse);
        return 0;

        void Row(string name, long macs, Timings times)
            => Console.WriteLine($"{name,-24} {macs / 1e9,8:F2} {(double)macs / ditMacs,9:F3} | " +
                                 $"{Median(times.Wall),14:F3} {times.Wall.Min(),7:F3} {Median(times.Wall) / Median(dense.Wall),9:F3} {times.Wall.Min() / dense.Wall.Min(),6:F3} | " +
                                 $"{Median(times.Cpu),13:F3} {times.Cpu.Min(),7:F3} {Median(times.Cpu) / Median(dense.Cpu),9:F3} {times.Cpu.Min() / dense.Cpu.Min(),6:F3}");
    }

    /// <summary>Wall-clock and process CPU seconds of repeated runs.</summary>
    private sealed class Timings
    {
        public List<double> Wall { get; } = [];

        public List<double> Cpu { get; } = [];

        public void Measure(Action run)
        {
            var process = Process.GetCurrentProcess();
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            run();
            Wall.Add(sw.Elapsed.TotalSeconds);
            process.Refresh();
            Cpu.Add((process.TotalProcessorTime - cpu0).TotalSeconds);
        }
    }

    private static bool IsRouterKey(string key) => key.Contains(".attn_rate.", StringComparison.Ordinal)
        || key.Contains(".mlp_rate.", StringComparison.Ordinal) || key.Contains(".token_selection.", StringComparison.Ordinal);

    /// <summary>
    /// Sets each block's token-router output bias so that a share <paramref name="off"/> of this batch's token logits
    /// is negative. Later blocks see what earlier blocks' decisions produced, so three passes settle it.
    /// </summary>
    private static float[] CalibrateTokenRouters(IBackend cpu, DyDit net, Tensor x, long[] t, long[] y, double off)
    {
        int depth = net.blocks.Length;
        var bias = new float[depth];
        for (int pass = 0; pass < 3; pass++)
        {
            using var r = net.Forward(x, t, y);
            var routing = r.Routing;
            for (int l = 0; l < depth; l++)
            {
                var logits = new List<float>();
                for (int n = 0; n < routing.Batch; n++)
                    logits.AddRange(routing.TokenLogits.AsSpan((n * depth + l) * routing.Tokens, routing.Tokens).ToArray());
                logits.Sort();
                // logits without this bias, then the bias that puts the off-quantile at zero
                float q = logits[Math.Clamp((int)(off * logits.Count), 0, logits.Count - 1)] - bias[l];
                float q0 = logits[Math.Clamp((int)(off * logits.Count) - 1, 0, logits.Count - 1)] - bias[l];
                bias[l] = -(q + q0) / 2;
                cpu.Upload([bias[l]], net.blocks[l].token_selection.mlp_head_2.bias);
            }
        }
        return bias;
    }

    private static void SetAllOn(IBackend cpu, DyDit net)
    {
        foreach (var block in net.blocks)
        {
            var on = Enumerable.Repeat(4f, block.Heads - 1).ToArray();
            cpu.Upload(on, block.attn_rate.router.bias);
            cpu.Upload(on, block.mlp_rate.router.bias);
            cpu.Upload([35f], block.token_selection.mlp_head_2.bias); // the official initial value: every token on
        }
    }

    // ---- random weights ----

    private static Dictionary<string, StoredTensor> RandomWeights(DitConfig c, double off, int seed)
    {
        int d = c.HiddenSize, h = c.NumHeads, p = c.PatchSize, hidden = c.MlpHidden;
        var w = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        int next = seed;
        void Linear(string name, int inFeatures, int outFeatures, float gain = 1f)
        {
            w[name + ".weight"] = new Generated([outFeatures, inFeatures], next++, gain / MathF.Sqrt(inFeatures));
            w[name + ".bias"] = new Generated([outFeatures], next++, 0.02f);
        }
        w["x_embedder.proj.weight"] = new Generated([d, c.InChannels, p, p], next++, 1f / MathF.Sqrt(c.InChannels * p * p));
        w["x_embedder.proj.bias"] = new Generated([d], next++, 0.02f);
        Linear("t_embedder.mlp.0", 256, d);
        Linear("t_embedder.mlp.2", d, d);
        w["y_embedder.embedding_table.weight"] = new Generated([c.LabelTableRows, d], next++, 0.5f);
        var rng = new Random(seed);
        for (int i = 0; i < c.Depth; i++)
        {
            string b = $"blocks.{i}";
            Linear(b + ".attn.qkv", d, 3 * d);
            Linear(b + ".attn.proj", d, d);
            Linear(b + ".mlp.fc1", d, hidden);
            Linear(b + ".mlp.fc2", hidden, d);
            Linear(b + ".adaLN_modulation.1", d, 6 * d, gain: 0.3f); // gates and scales of order 0.1–1
            foreach (var router in new[] { ".attn_rate.router", ".mlp_rate.router" })
            {
                // zero weights, bias ±4: a fixed pattern with round(off·H) of heads 1..H−1 off
                var order = Enumerable.Range(0, h - 1).OrderBy(_ => rng.Next()).ToArray();
                int offCount = Math.Min(h - 1, (int)Math.Round(off * h));
                var bias = new float[h - 1];
                for (int j = 0; j < h - 1; j++) bias[order[j]] = j < offCount ? -4f : 4f;
                w[b + router + ".weight"] = new Generated([h - 1, d], next++, 0f);
                w[b + router + ".bias"] = new Constant([h - 1], bias);
            }
            Linear(b + ".token_selection.mlp_head.0", d, d / 16);
            Linear(b + ".token_selection.mlp_head.2", d / 16, 1);
        }
        Linear("final_layer.linear", d, p * p * c.OutChannels);
        Linear("final_layer.adaLN_modulation.1", d, 2 * d, gain: 0.3f);
        return w;
    }

    /// <summary>Uniform values in ±scale·√3 (standard deviation = scale), generated when read (xorshift, per-tensor seed).</summary>
    private sealed class Generated(long[] shape, int seed, float scale) : StoredTensor("", shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination)
        {
            var values = new float[ElementCount];
            ulong s = 0x9E3779B97F4A7C15UL * (ulong)(seed + 1);
            float a = scale * MathF.Sqrt(3f);
            for (long i = 0; i < values.LongLength; i++)
            {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                values[i] = ((s >> 40) * (1f / (1 << 24)) * 2f - 1f) * a;
            }
            destination.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    private sealed class Constant(long[] shape, float[] values) : StoredTensor("", shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination) => destination.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
