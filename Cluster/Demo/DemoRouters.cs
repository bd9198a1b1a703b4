using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Cluster.Demo;

/// <summary>
/// Turns the demo DiT into a DyDiT of a chosen compute target λ by adding DyDiT's routers (keys and shapes of
/// DyDiT/models.py) with weights chosen so that, at inference, a visible and timestep-dependent share of the work is
/// switched off — a forward pass costs about λ of DiT's multiply-accumulates, averaged over the 1000 timesteps. The backbone is
/// the DiT demo's, unchanged, so DiT and DyDiT compare like with like.
/// <list type="number">
/// <item><b>Head and MLP-group routers</b> (<c>attn_rate.router</c>, <c>mlp_rate.router</c>: Linear(D, H − 1) on the
///   timestep embedding only). Let E(t) be the demo's timestep embedding for t = 0…999 and r the linear read-out of
///   E(t) that best follows −t (ridge least squares). Router output j gets weight (r + 0.15·|r|·g)·s with g random
///   (|g| ≈ 1) and s scaling the logits to a spread of 2 over t, so logits fall with t and each head switches at its
///   own timestep. Its bias puts the switch at the f-quantile over t: the output is off on a share f of the
///   timesteps — the noisiest ones, where DyDiT's paper also finds most redundancy. f varies over heads and blocks
///   (½f̄, f̄, 1½f̄, rotated) around the f̄ that meets λ together with the token share below.</item>
/// <item><b>Token routers</b> (<c>token_selection.mlp_head</c>: Linear(D, D/16) → ReLU → Linear(D/16, 1) per token on
///   the residual stream). First layer random, both biases 0, second-layer weights a − μ with a random: the decision
///   Σ (a_k − μ) h_k &gt; 0 means "the h-weighted mean of a exceeds μ", which does not change when the residual stream
///   grows (the latents of an untrained model do). μ is calibrated block by block on the demo network itself (our
///   DyDiT, one CPU thread) so that a share (1 − λ)/3 of the tokens of random latents (of scale 1 and 100) at 10 timesteps skip the MLP.</item>
/// </list>
/// Biases and μ are rounded to multiples of 2⁻¹⁰ so that float rounding in the calibration does not reach the file.
/// </summary>
internal static class DemoRouters
{
    private const double Grid = 1.0 / 1024;
    private const double RandomShare = 0.15;
    private const double LogitSpread = 2.0;
    private const int CalibrationSamplesPerTimestep = 12;
    private const float LargeLatentScale = 100;
    private static readonly long[] CalibrationTimesteps = [0, 111, 222, 333, 444, 555, 666, 777, 888, 999];

    /// <summary>Share of tokens whose MLP is skipped for target λ.</summary>
    public static double TokenOffShare(double lambda) => (1 - lambda) / 3;

    /// <summary>
    /// Mean share of routable heads (and of MLP groups) to switch off so that, with <see cref="TokenOffShare"/>, a
    /// forward pass costs about λ of DiT's multiply-accumulates (head and group 0 are always on). The work routing
    /// cannot touch — embeddings, adaLN, the final layer, the routers themselves — counts at full cost.
    /// </summary>
    public static double WidthOffShare(DitConfig config, double lambda)
    {
        var (attn, mlp) = DyDitRouting.BlockMultiplyAccumulates(config);
        double routed = config.Depth * (double)(attn + mlp);
        int d = config.HiddenSize, h = config.NumHeads;
        double routers = config.Depth * ((double)config.Tokens * (d * (d / 16) + d / 16) + 2.0 * d * (h - 1));
        double fixedWork = config.MultiplyAccumulatesPerSample() - routed + routers;
        double routedOn = (lambda * config.MultiplyAccumulatesPerSample() - fixedWork) / routed;
        double on = routedOn * (attn + mlp) / (attn + mlp * (1 - TokenOffShare(lambda))); // share of heads (= groups) on
        return Math.Clamp(1 - (h * on - 1) / (h - 1), 0, 0.95);
    }

    /// <summary>The DyDiT state dict: <paramref name="dit"/>'s tensors plus routers, in DyDiT's key order.</summary>
    public static DemoWeights Add(DemoWeights dit, DitConfig config, double lambda, DemoRandom random, IBackend backend)
    {
        if (!(lambda > 0 && lambda <= 1)) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "λ must be in (0, 1]");
        int d = config.HiddenSize, h = config.NumHeads, hidden = d / 16;
        var tEmb = TimestepEmbeddings(dit, d);
        var readout = TimeReadout(tEmb, d);
        double widthOff = WidthOffShare(config, lambda);

        var w = new DemoWeights();
        foreach (var key in dit.Keys)
        {
            w.Add(key, (float[])dit[key].Clone(), dit.Shape(key));
            if (!key.StartsWith("blocks.", StringComparison.Ordinal) || !key.EndsWith(".adaLN_modulation.1.bias", StringComparison.Ordinal)) continue;
            string block = key[..^".adaLN_modulation.1.bias".Length];
            int l = int.Parse(block["blocks.".Length..], System.Globalization.CultureInfo.InvariantCulture);
            for (int kind = 0; kind < 2; kind++)
            {
                var (weight, bias) = WidthRouter(tEmb, readout, d, h, widthOff, rotation: l + 2 * kind, random);
                string name = $"{block}.{(kind == 0 ? "attn_rate" : "mlp_rate")}.router";
                w.Add(name + ".weight", weight, h - 1, d);
                w.Add(name + ".bias", bias, h - 1);
            }
            w.Add(block + ".token_selection.mlp_head.0.weight", random.Normal((long)hidden * d, 1 / Math.Sqrt(d)), hidden, d);
            w.Add(block + ".token_selection.mlp_head.0.bias", new float[hidden], hidden);
            w.Add(block + ".token_selection.mlp_head.2.weight", random.Normal(hidden, 1), 1, hidden); // a; μ subtracted below
            w.Add(block + ".token_selection.mlp_head.2.bias", new float[1], 1);
        }
        CalibrateTokens(w, config, TokenOffShare(lambda), random, backend);
        return w;
    }

    // E(t) for t = 0..999 in float64 from the demo's t_embedder weights: Linear(256, D) → SiLU → Linear(D, D)
    private static double[][] TimestepEmbeddings(DemoWeights w, int d)
    {
        var t = Enumerable.Range(0, 1000).Select(i => (long)i).ToArray();
        var freq = TimestepEmbedder.FrequencyFeatures(t);
        int f = TimestepEmbedder.FrequencyEmbeddingSize;
        float[] w0 = w["t_embedder.mlp.0.weight"], b0 = w["t_embedder.mlp.0.bias"], w2 = w["t_embedder.mlp.2.weight"], b2 = w["t_embedder.mlp.2.bias"];
        var result = new double[t.Length][];
        var hidden = new double[d];
        for (int n = 0; n < t.Length; n++)
        {
            for (int i = 0; i < d; i++)
            {
                double s = b0[i];
                for (int k = 0; k < f; k++) s += (double)w0[i * f + k] * freq[n * f + k];
                hidden[i] = s / (1 + Math.Exp(-s));
            }
            var e = result[n] = new double[d];
            for (int i = 0; i < d; i++)
            {
                double s = b2[i];
                for (int k = 0; k < d; k++) s += (double)w2[i * d + k] * hidden[k];
                e[i] = s;
            }
        }
        return result;
    }

    /// <summary>
    /// The linear read-out of E(t) that best follows −t (ridge least squares over t = 0…999, E centred), so that a
    /// router using it has logits falling steadily with the timestep.
    /// </summary>
    private static double[] TimeReadout(double[][] e, int d)
    {
        var mean = new double[d];
        foreach (var row in e)
            for (int i = 0; i < d; i++) mean[i] += row[i] / e.Length;
        var gram = new double[d * d];
        var rhs = new double[d];
        var centred = new double[d];
        for (int n = 0; n < e.Length; n++)
        {
            for (int i = 0; i < d; i++) centred[i] = e[n][i] - mean[i];
            double target = 0.5 - n / 999.0;
            for (int i = 0; i < d; i++)
            {
                rhs[i] += centred[i] * target;
                for (int k = 0; k < d; k++) gram[i * d + k] += centred[i] * centred[k];
            }
        }
        double ridge = 1e-3 * Enumerable.Range(0, d).Average(i => gram[i * d + i]) + 1e-12;
        for (int i = 0; i < d; i++) gram[i * d + i] += ridge;
        return SolveSymmetric(gram, rhs, d);
    }

    // Cholesky solve of a symmetric positive definite system (the ridge keeps it definite)
    private static double[] SolveSymmetric(double[] a, double[] b, int n)
    {
        var l = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = a[i * n + j];
                for (int k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
                l[i * n + j] = i == j ? Math.Sqrt(Math.Max(s, 1e-300)) : s / l[j * n + j];
            }
        var y = new double[n];
        for (int i = 0; i < n; i++)
        {
            double s = b[i];
            for (int k = 0; k < i; k++) s -= l[i * n + k] * y[k];
            y[i] = s / l[i * n + i];
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double s = y[i];
            for (int k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
            x[i] = s / l[i * n + i];
        }
        return x;
    }

    private static (float[] Weight, float[] Bias) WidthRouter(double[][] e, double[] readout, int d, int heads, double meanOff, int rotation, DemoRandom random)
    {
        int outputs = heads - 1;
        var weight = new float[outputs * d];
        var bias = new float[outputs];
        var g = random.Normal((long)outputs * d, 1 / Math.Sqrt(d));
        double norm = Math.Sqrt(readout.Sum(x => x * x));
        for (int j = 0; j < outputs; j++)
        {
            // off share of this output: ½f̄ … 1½f̄ across the outputs, rotated per block and router kind
            double spread = outputs == 1 ? 1 : 0.5 + (double)((j + rotation) % outputs) / (outputs - 1);
            double off = Math.Clamp(meanOff * spread, 0, 0.95);
            var raw = new double[d];
            for (int i = 0; i < d; i++) raw[i] = readout[i] + RandomShare * norm * g[j * d + i];
            var logits = e.Select(row => Dot(raw, row)).ToArray();
            double std = Math.Sqrt(logits.Select(x => x * x).Average() - Math.Pow(logits.Average(), 2));
            double scale = LogitSpread / Math.Max(std, 1e-12);
            for (int i = 0; i < d; i++) weight[j * d + i] = (float)(raw[i] * scale);
            bias[j] = (float)Quantize(-Quantile(logits.Select(x => x * scale).ToArray(), off));
        }
        return (weight, bias);
    }

    /// <summary>
    /// Sets each block's μ (second token-router layer = a − μ) so that a share <paramref name="offShare"/> of the
    /// calibration tokens is not selected. Blocks go in order: a block's token logits depend on the blocks before it.
    /// The logits for μ = 0 and μ = 1 give, per token, S_a = Σ a_k h_k and S_h = Σ h_k, hence ρ = S_a / S_h.
    /// </summary>
    private static void CalibrateTokens(DemoWeights w, DitConfig config, double offShare, DemoRandom random, IBackend backend)
    {
        int perT = CalibrationSamplesPerTimestep, batch = CalibrationTimesteps.Length * perT;
        int size = config.InputSize, tokens = config.Tokens;
        // half the latents N(0, 1) as at the start of sampling, half N(0, 100²): an untrained DiT's latents grow to hundreds
        int row = config.InChannels * size * size;
        var z = random.Normal((long)batch * row, 1);
        for (int n = 0; n < batch; n++)
            if (n % perT >= perT / 2)
                for (int i = n * row; i < (n + 1) * row; i++) z[i] *= LargeLatentScale;
        var labels = random.Labels(batch, config.LabelTableRows); // the null class included
        var t = Enumerable.Range(0, batch).Select(i => CalibrationTimesteps[i / perT]).ToArray();
        using var x = backend.FromHost(z, batch, config.InChannels, size, size);

        for (int l = 0; l < config.Depth; l++)
        {
            string key = $"blocks.{l}.token_selection.mlp_head.2.weight";
            var a = w[key];
            float[] Logits(double mu)
            {
                w.Set(key, a.Select(v => (float)(v - mu)).ToArray());
                using var net = DyDit.FromStateDict(w.AsStateDict(), "demo DyDiT (calibration)", config, backend);
                using var result = net.Forward(x, t, labels);
                var all = result.Routing.TokenLogits;
                var block = new float[batch * tokens];
                for (int n = 0; n < batch; n++)
                    Array.Copy(all, (n * config.Depth + l) * tokens, block, n * tokens, tokens);
                return block;
            }
            var l0 = Logits(0);
            var l1 = Logits(1);
            var rho = new double[l0.Length];
            for (int i = 0; i < rho.Length; i++)
            {
                double sh = (double)l0[i] - l1[i];
                rho[i] = sh > 1e-6 ? l0[i] / sh : double.NegativeInfinity; // no active hidden unit: logit 0, never selected
            }
            double mu = Quantize(Quantile(rho, offShare));
            w.Set(key, a.Select(v => (float)(v - mu)).ToArray());
        }
    }

    /// <summary>A threshold with a share <paramref name="below"/> of <paramref name="values"/> under it: the midpoint between the two order statistics around that rank.</summary>
    private static double Quantile(double[] values, double below)
    {
        var sorted = values.Where(v => !double.IsNegativeInfinity(v)).OrderBy(v => v).ToArray();
        int skipped = values.Length - sorted.Length;
        int rank = (int)Math.Round(below * values.Length) - skipped; // values at sorted[0..rank) fall below
        if (sorted.Length == 0) return 0;
        if (rank <= 0) return sorted[0] - 1;
        if (rank >= sorted.Length) return sorted[^1] + 1;
        return 0.5 * (sorted[rank - 1] + sorted[rank]);
    }

    private static double Quantize(double v) => Math.Round(v / Grid) * Grid;

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
