namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>Inception Score and its per-split scores (float32 values, as ADM computes them).</summary>
public sealed record InceptionScoreResult(double Score, float[] SplitScores, int[] SplitSizes);

/// <summary>
/// ADM's Inception Score: p = softmax(logits) per sample (logits = pool · W without fc bias), consecutive splits of
/// <c>splitSize</c> rows in input order (a short last split counts like a full one), per split
/// exp(mean_i Σ_j p_ij (log p_ij − log q_j)) with q the split's mean p, and the plain mean of the split scores.
/// Arithmetic is float32 like numpy's on float32 arrays (sums accumulated in double, values rounded to float32).
/// </summary>
public static class InceptionScore
{
    public const int DefaultSplitSize = 5000;

    /// <param name="logits">[N, classes] unbiased logits, C order.</param>
    public static InceptionScoreResult FromLogits(ReadOnlySpan<float> logits, int classes, int splitSize = DefaultSplitSize)
    {
        if (classes <= 0 || logits.Length % classes != 0) throw new ArgumentException($"{logits.Length} logits are not rows of {classes}");
        if (splitSize <= 0) throw new ArgumentOutOfRangeException(nameof(splitSize), "split size must be positive");
        int n = logits.Length / classes;
        if (n == 0) throw new ArgumentException("no samples for the Inception Score");
        var probabilities = new float[(long)n * classes];
        for (int r = 0; r < n; r++) Softmax(logits.Slice(r * classes, classes), probabilities.AsSpan(r * classes, classes));

        var scores = new List<float>();
        var sizes = new List<int>();
        var q = new double[classes];
        var logQ = new float[classes];
        for (int start = 0; start < n; start += splitSize)
        {
            int m = Math.Min(splitSize, n - start);
            var part = probabilities.AsSpan(start * classes, m * classes);
            // q = np.mean(part, axis=0): float32 sum over rows, divided in float32
            Array.Clear(q);
            var q32 = new float[classes];
            for (int r = 0; r < m; r++)
                for (int j = 0; j < classes; j++) q32[j] += part[r * classes + j];
            for (int j = 0; j < classes; j++) logQ[j] = MathF.Log(q32[j] / m);
            double klSum = 0;
            for (int r = 0; r < m; r++)
            {
                double kl = 0;
                for (int j = 0; j < classes; j++)
                {
                    float p = part[r * classes + j];
                    kl += (double)(p * (MathF.Log(p) - logQ[j]));
                }
                klSum += (float)kl;
            }
            scores.Add(MathF.Exp((float)(klSum / m)));
            sizes.Add(m);
        }
        double mean = 0;
        foreach (var s in scores) mean += s;
        return new InceptionScoreResult((float)(mean / scores.Count), [.. scores], [.. sizes]);
    }

    /// <summary>softmax in float64, rounded to float32 (the float32 graph's output to within rounding).</summary>
    public static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        double max = double.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        double sum = 0;
        for (int j = 0; j < logits.Length; j++) sum += Math.Exp(logits[j] - max);
        for (int j = 0; j < logits.Length; j++) probabilities[j] = (float)(Math.Exp(logits[j] - max) / sum);
    }
}
