namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>
/// Mean and covariance of a feature set, as ADM's evaluator holds them: <c>mu</c> is numpy's float32 mean of
/// float32 activations (or float64 when read from a file that stores it so), <c>sigma</c> the float64
/// covariance with N−1. Matrices are row-major.
/// </summary>
/// <param name="Mu">The mean, widened to double.</param>
/// <param name="MuIsFloat32">True when ADM would hold <c>mu</c> as float32 (affects the FID mean term's arithmetic).</param>
/// <param name="Sigma">Dim × Dim covariance.</param>
/// <param name="Count">Number of feature vectors, or null when the statistics were read precomputed.</param>
public sealed record FeatureStatistics(double[] Mu, bool MuIsFloat32, double[] Sigma, int Dim, long? Count)
{
    /// <summary>Rows (units) of sigma that are exactly zero: features that never vary ("dead units").</summary>
    public IReadOnlyList<int> DeadUnits()
    {
        var dead = new List<int>();
        for (int i = 0; i < Dim; i++)
            if (!Sigma.AsSpan(i * Dim, Dim).ContainsAnyExcept(0.0)) dead.Add(i);
        return dead;
    }

    public double SigmaTrace()
    {
        double t = 0;
        for (int i = 0; i < Dim; i++) t += Sigma[i * Dim + i];
        return t;
    }
}
