using DyDiT.Eval.Engine.LinearAlgebra;

namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>What the Fréchet distance computation did, for reports and warnings.</summary>
/// <param name="EpsilonApplied">ADM's retry with 1e-6 added to both diagonals was taken.</param>
/// <param name="Warning">ADM's warning text when it was, else null.</param>
public sealed record FrechetResult(double Distance, double MeanTerm, double TraceSqrtProduct, bool EpsilonApplied, string? Warning);

/// <summary>
/// FID / sFID: ‖μ₁−μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2·Tr √(Σ₁Σ₂), sample statistics first, reference second, as ADM calls it.
/// Tr √(Σ₁Σ₂) is Σ √λᵢ over the eigenvalues of the symmetric matrix Lᵀ Σ₂ L (Σ₁ = L Lᵀ), which is similar to
/// Σ₁Σ₂; when Σ₁ is singular, L is replaced by V·Λ^½ from Σ₁'s eigen-decomposition. All float64.
/// </summary>
public static class FrechetDistance
{
    public const double Epsilon = 1e-6;

    public const string EpsilonWarning = "fid calculation produces singular product; adding 1e-06 to diagonal of cov estimates";

    public static FrechetResult Compute(FeatureStatistics sample, FeatureStatistics reference)
    {
        if (sample.Dim != reference.Dim)
            throw new ArgumentException($"statistics have different dimensions: sample {sample.Dim}, reference {reference.Dim}");
        int d = sample.Dim;

        // ADM (scipy's sqrtm) produces a non-finite square root — and then retries with εI added — when the product
        // has a defective zero eigenvalue. With exactly-zero covariance rows that happens when each set has a dead
        // unit the other set does not share (zero row a of Σ₁ and zero column b ≠ a of Σ₂).
        var deadSample = sample.DeadUnits();
        var deadReference = reference.DeadUnits();
        bool eps = deadSample.Any(a => deadReference.Any(b => b != a));

        // The covariances are only read below; copies are needed just for ADM's εI retry.
        var s1 = sample.Sigma;
        var s2 = reference.Sigma;
        if (eps)
        {
            s1 = (double[])s1.Clone();
            s2 = (double[])s2.Clone();
            for (int i = 0; i < d; i++) { s1[i * d + i] += Epsilon; s2[i * d + i] += Epsilon; }
        }

        double traceSqrt = TraceSqrtProduct(s1, s2, d);
        double meanTerm = MeanTerm(sample, reference);
        double distance = meanTerm + sample.SigmaTrace() + reference.SigmaTrace() - 2 * traceSqrt;
        return new FrechetResult(distance, meanTerm, traceSqrt, eps, eps ? EpsilonWarning : null);
    }

    /// <summary>Tr √(Σ₁Σ₂) for symmetric positive semi-definite Σ₁, Σ₂ (row-major d×d); neither is modified.</summary>
    public static double TraceSqrtProduct(double[] s1, double[] s2, int d)
    {
        var factor = (double[])s1.Clone();
        var m = new double[(long)d * d];
        if (HostLinearAlgebra.CholeskyLower(factor, d))
        {
            HostLinearAlgebra.LowerCongruence(factor, s2, d, m);
        }
        else
        {
            // Singular Σ₁ (fewer samples than dimensions): B = V·Λ₊^½, then Bᵀ Σ₂ B has the eigenvalues of Σ₁Σ₂.
            var values = new double[d];
            var vectors = new double[(long)d * d];   // row i = eigenvector i
            HostLinearAlgebra.SymmetricEigen(s1, d, values, vectors);
            for (int i = 0; i < d; i++)
            {
                double scale = Math.Sqrt(Math.Max(values[i], 0));
                var row = vectors.AsSpan(i * d, d);
                for (int j = 0; j < d; j++) row[j] *= scale;
            }
            // vectors now holds Bᵀ (d×d, row i = √λᵢ vᵢ); m = Bᵀ Σ₂ B.
            var t = new double[(long)d * d];
            HostLinearAlgebra.GemmF64(vectors, false, s2, false, t, d, d, d);   // Bᵀ Σ₂
            HostLinearAlgebra.GemmF64(t, false, vectors, true, m, d, d, d);     // (Bᵀ Σ₂) B
            for (int i = 0; i < d; i++)                                // symmetrise away rounding
                for (int j = 0; j < i; j++)
                    m[i * d + j] = m[j * d + i] = 0.5 * (m[i * d + j] + m[j * d + i]);
        }
        var eigenvalues = new double[d];
        HostLinearAlgebra.SymmetricEigenvalues(m, d, eigenvalues);
        double trace = 0;
        foreach (var v in eigenvalues) trace += Math.Sqrt(Math.Max(v, 0)); // ADM keeps the real part of √ of a tiny negative
        return trace;
    }

    // ADM: diff = mu1 − mu2 and diff.dot(diff) in numpy's dtype: float32 when both means are float32.
    private static double MeanTerm(FeatureStatistics a, FeatureStatistics b)
    {
        if (a.MuIsFloat32 && b.MuIsFloat32)
        {
            double s = 0;
            for (int i = 0; i < a.Dim; i++)
            {
                float diff = (float)a.Mu[i] - (float)b.Mu[i];
                s += (double)diff * diff;
            }
            return (float)s;
        }
        double t = 0;
        for (int i = 0; i < a.Dim; i++)
        {
            double diff = a.Mu[i] - b.Mu[i];
            t += diff * diff;
        }
        return t;
    }
}
