using DyDiT.Eval.Engine.LinearAlgebra;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>
/// Float64 host linear algebra (<see cref="HostLinearAlgebra"/>: LAPACK/BLAS through OpenBLAS, used by the evaluator's
/// statistics whatever the device) against plain loops written from the formulas.
/// </summary>
public sealed class HostLinearAlgebraTests
{
    [Fact]
    public void SymmetricEigenReconstructsTheMatrix()
    {
        const int n = 37;
        var rng = new Random(7);
        var x = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
                x[i * n + j] = x[j * n + i] = rng.NextDouble() - 0.5;
        var w = new double[n];
        var v = new double[n * n];
        HostLinearAlgebra.SymmetricEigen(x, n, w, v);
        for (int i = 1; i < n; i++) Assert.True(w[i - 1] <= w[i], "eigenvalues ascending");
        // A · v_i = λ_i · v_i with v_i = row i, and the rows are orthonormal
        for (int e = 0; e < n; e++)
        {
            for (int r = 0; r < n; r++)
            {
                double av = 0;
                for (int c = 0; c < n; c++) av += x[r * n + c] * v[e * n + c];
                Assert.True(Math.Abs(av - w[e] * v[e * n + r]) < 1e-12, $"eigenpair {e}, row {r}");
            }
            double norm = 0;
            for (int c = 0; c < n; c++) norm += v[e * n + c] * v[e * n + c];
            Assert.True(Math.Abs(norm - 1) < 1e-12);
        }
    }

    [Fact]
    public void SymmetricEigenOfKnownMatrix()
    {
        // [[2,1],[1,2]] has eigenvalues 1 and 3 with eigenvectors (1,-1)/√2 and (1,1)/√2
        var w = new double[2];
        var v = new double[4];
        HostLinearAlgebra.SymmetricEigen([2, 1, 1, 2], 2, w, v);
        Assert.Equal(1.0, w[0], 14);
        Assert.Equal(3.0, w[1], 14);
        Assert.Equal(1 / Math.Sqrt(2), Math.Abs(v[2]), 14);
        Assert.Equal(v[2], v[3], 14);
        Assert.Equal(-v[0], v[1], 14);
    }

    private static double[] SpdMatrix(int n, int seed)
    {
        var rng = new Random(seed);
        var b = new double[n * n];
        for (int i = 0; i < b.Length; i++) b[i] = rng.NextDouble() - 0.5;
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? 0.5 : 0;
                for (int k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
                a[i * n + j] = s;
            }
        return a;
    }

    [Fact]
    public void CholeskyReconstructsAndRejectsIndefinite()
    {
        const int n = 23;
        var a = SpdMatrix(n, 1);
        var l = (double[])a.Clone();
        Assert.True(HostLinearAlgebra.CholeskyLower(l, n));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                if (j > i) Assert.Equal(0.0, l[i * n + j]);
                double s = 0;
                for (int k = 0; k < n; k++) s += l[i * n + k] * l[j * n + k];
                Assert.True(Math.Abs(s - a[i * n + j]) < 1e-12, $"({i},{j})");
            }
        var indefinite = new double[] { 1, 2, 2, 1 };
        Assert.False(HostLinearAlgebra.CholeskyLower(indefinite, 2));
    }

    [Fact]
    public void CongruenceAndEigenvaluesAgreeWithLoops()
    {
        const int n = 17;
        var l = SpdMatrix(n, 2);
        Assert.True(HostLinearAlgebra.CholeskyLower(l, n));
        var s = SpdMatrix(n, 3);
        var r = new double[n * n];
        HostLinearAlgebra.LowerCongruence(l, s, n, r);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double v = 0;
                for (int p = 0; p < n; p++)
                    for (int q = 0; q < n; q++)
                        v += l[p * n + i] * s[p * n + q] * l[q * n + j];
                Assert.True(Math.Abs(v - r[i * n + j]) < 1e-11, $"({i},{j})");
            }
        var values = new double[n];
        var vectors = new double[n * n];
        HostLinearAlgebra.SymmetricEigen(r, n, values, vectors);
        var only = new double[n];
        HostLinearAlgebra.SymmetricEigenvalues(r, n, only);
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(values[i] - only[i]) < 1e-11);
    }

    [Fact]
    public void GramAccumulatesOverBatches()
    {
        const int rows = 37, cols = 9;
        var rng = new Random(4);
        var x = new double[rows * cols];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble();
        var gram = new double[cols * cols];
        HostLinearAlgebra.AccumulateGramLower(x.AsSpan(0, 20 * cols), 20, cols, gram);
        HostLinearAlgebra.AccumulateGramLower(x.AsSpan(20 * cols), rows - 20, cols, gram);
        for (int i = 0; i < cols; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                for (int r = 0; r < rows; r++) s += x[r * cols + i] * x[r * cols + j];
                Assert.True(Math.Abs(s - gram[i * cols + j]) < 1e-12);
            }
    }
}
