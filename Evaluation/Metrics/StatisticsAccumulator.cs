using DyDiT.Eval.Engine.LinearAlgebra;
using System.Numerics.Tensors;

namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>
/// Streams feature rows into ADM's statistics: <c>mu = np.mean(acts, axis=0)</c> (float32, summed row after row
/// in float32, divided by N in float32) and <c>sigma = np.cov(acts, rowvar=False)</c> (float64, N−1). Rows may
/// arrive in any batching (shard by shard): the result does not depend on it. Memory: Dim² doubles.
/// </summary>
public sealed class StatisticsAccumulator
{
    private const int BatchRows = 512;
    private readonly float[] _sum32;
    private readonly double[] _shift;      // first row: centring keeps the float64 Gram accurate
    private readonly double[] _sumCentred;
    private readonly double[] _gram;       // lower triangle of Σ (x − shift)ᵀ(x − shift)
    private readonly double[] _batch;

    public StatisticsAccumulator(int dim)
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim));
        Dim = dim;
        _sum32 = new float[dim];
        _shift = new double[dim];
        _sumCentred = new double[dim];
        _gram = new double[(long)dim * dim];
        _batch = new double[BatchRows * dim];
    }

    public int Dim { get; }

    public long Count { get; private set; }

    /// <summary>Adds whole rows (length a multiple of <see cref="Dim"/>), C order.</summary>
    public void Add(ReadOnlySpan<float> rows)
    {
        if (rows.Length % Dim != 0) throw new ArgumentException($"{rows.Length} values are not whole rows of {Dim}");
        int n = rows.Length / Dim;
        if (n == 0) return;
        if (Count == 0)
            for (int j = 0; j < Dim; j++) _shift[j] = rows[j];
        for (int r = 0; r < n; r++)
            TensorPrimitives.Add(_sum32, rows.Slice(r * Dim, Dim), _sum32); // float32, sequential over rows
        for (int start = 0; start < n; start += BatchRows)
        {
            int m = Math.Min(BatchRows, n - start);
            var batch = _batch.AsSpan(0, m * Dim);
            for (int r = 0; r < m; r++)
            {
                var src = rows.Slice((start + r) * Dim, Dim);
                var dst = batch.Slice(r * Dim, Dim);
                for (int j = 0; j < Dim; j++) dst[j] = src[j] - _shift[j];
                TensorPrimitives.Add(_sumCentred, dst, _sumCentred);
            }
            HostLinearAlgebra.AccumulateGramLower(batch, m, Dim, _gram);
        }
        Count += n;
    }

    public FeatureStatistics Finish()
    {
        if (Count < 2) throw new InvalidOperationException($"statistics need at least 2 feature vectors, got {Count}");
        var mu = new double[Dim];
        float count32 = Count;
        for (int j = 0; j < Dim; j++) mu[j] = _sum32[j] / count32;
        var mean = new double[Dim];
        for (int j = 0; j < Dim; j++) mean[j] = _sumCentred[j] / Count;
        var sigma = new double[(long)Dim * Dim];
        double denominator = Count - 1;
        for (int i = 0; i < Dim; i++)
            for (int j = 0; j <= i; j++)
            {
                double v = (_gram[i * Dim + j] - Count * mean[i] * mean[j]) / denominator;
                sigma[i * Dim + j] = v;
                sigma[j * Dim + i] = v;
            }
        return new FeatureStatistics(mu, MuIsFloat32: true, sigma, Dim, Count);
    }

    /// <summary>One pass over a whole [N, Dim] feature matrix.</summary>
    public static FeatureStatistics Compute(ReadOnlySpan<float> features, int dim)
    {
        var acc = new StatisticsAccumulator(dim);
        acc.Add(features);
        return acc.Finish();
    }
}
