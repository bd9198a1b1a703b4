using DyDiT.Eval.Engine.Backends.Cpu;

namespace DyDiT.Eval.Engine.LinearAlgebra;

/// <summary>
/// Float64 linear algebra on host arrays for the evaluator's statistics (covariance, Fréchet distance, exact distances),
/// through OpenBLAS/LAPACK whatever device computes the tensors. LAPACK/BLAS are column-major, our matrices row-major,
/// so a row-major lower triangle is LAPACK's upper triangle and a row-major product is the transposed one.
/// </summary>
public static unsafe partial class HostLinearAlgebra
{
    static HostLinearAlgebra() => OpenBlas.EnsureLoaded();

    public static void GemmF64(ReadOnlySpan<double> a, bool transposeA, ReadOnlySpan<double> b, bool transposeB, Span<double> c, int m, int n, int k)
    {
        if (a.Length != (long)m * k || b.Length != (long)k * n || c.Length != (long)m * n)
            throw new ArgumentException($"GemmF64: op(A) must be {m}x{k}, op(B) {k}x{n}, C {m}x{n}");
        if (m == 0 || n == 0) return;
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        // Tiles of C cut by shape alone (as the CPU backend's sgemm), each one single-threaded dgemm over the whole K:
        // the bits do not depend on how many cores run them.
        var tiles = GemmTiles.Of(m, n, k);
        fixed (double* pa = a)
        fixed (double* pb = b)
        fixed (double* pc = c)
        {
            double* a0 = pa, b0 = pb, c0 = pc;
            Parallel.For(0, tiles.Count, t =>
            {
                var (r0, col0, rows, cols) = tiles.Bounds(t, m, n);
                double* at = transposeA ? a0 + r0 : a0 + (long)r0 * lda;
                double* bt = transposeB ? b0 + (long)col0 * ldb : b0 + col0;
                OpenBlas.Dgemm(OpenBlas.RowMajor, transposeA ? OpenBlas.Trans : OpenBlas.NoTrans, transposeB ? OpenBlas.Trans : OpenBlas.NoTrans,
                    rows, cols, k, 1.0, at, Math.Max(1, lda), bt, Math.Max(1, ldb), 0.0, c0 + (long)r0 * n + col0, Math.Max(1, n));
            });
        }
    }

    public static void SymmetricEigenvalues(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues)
    {
        if (n < 0 || matrix.Length != (long)n * n || eigenvalues.Length != n)
            throw new ArgumentException($"SymmetricEigenvalues: n={n} needs a {n}x{n} matrix and {n} eigenvalues");
        if (n == 0) return;
        var a = matrix.ToArray();
        byte jobz = (byte)'N', uplo = (byte)'U';
        int nn = n, lda = n, info = 0, lwork = -1, liwork = -1, iworkQuery = 0;
        double workQuery = 0;
        fixed (double* pa = a)
        fixed (double* w = eigenvalues)
        {
            OpenBlas.Dsyevd(&jobz, &uplo, &nn, pa, &lda, w, &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1);
            if (info != 0) throw new InvalidOperationException($"dsyevd workspace query failed (info={info})");
            lwork = (int)workQuery;
            liwork = Math.Max(1, iworkQuery);
            var work = new double[lwork];
            var iwork = new int[liwork];
            fixed (double* pw = work)
            fixed (int* piw = iwork)
                OpenBlas.Dsyevd(&jobz, &uplo, &nn, pa, &lda, w, pw, &lwork, piw, &liwork, &info, 1, 1);
        }
        if (info != 0) throw new InvalidOperationException($"dsyevd failed (info={info})");
    }

    public static bool CholeskyLower(Span<double> matrix, int n)
    {
        if (n < 0 || matrix.Length != (long)n * n) throw new ArgumentException($"CholeskyLower: n={n} needs a {n}x{n} matrix");
        if (n == 0) return true;
        byte uplo = (byte)'U'; // LAPACK's upper = our row-major lower
        int nn = n, lda = n, info = 0;
        fixed (double* a = matrix) OpenBlas.Dpotrf(&uplo, &nn, a, &lda, &info, 1);
        if (info < 0) throw new ArgumentException($"dpotrf: argument {-info} is invalid");
        if (info > 0) return false;
        for (int i = 0; i < n; i++) matrix.Slice(i * n + i + 1, n - i - 1).Clear();
        return true;
    }

    public static void LowerCongruence(ReadOnlySpan<double> lower, ReadOnlySpan<double> s, int n, Span<double> result)
    {
        long nn = (long)n * n;
        if (n < 0 || lower.Length != nn || s.Length != nn || result.Length != nn)
            throw new ArgumentException($"LowerCongruence: n={n} needs three {n}x{n} matrices");
        if (n == 0) return;
        s.CopyTo(result);
        fixed (double* l = lower)
        fixed (double* r = result)
        {
            // Row-major: R ← R·L (right side), then R ← Lᵀ·R (left side, transposed).
            OpenBlas.Dtrmm(OpenBlas.RowMajor, OpenBlas.Right, OpenBlas.Lower, OpenBlas.NoTrans, OpenBlas.NonUnit, n, n, 1.0, l, n, r, n);
            OpenBlas.Dtrmm(OpenBlas.RowMajor, OpenBlas.Left, OpenBlas.Lower, OpenBlas.Trans, OpenBlas.NonUnit, n, n, 1.0, l, n, r, n);
        }
    }

    public static void AccumulateGramLower(ReadOnlySpan<double> x, int rows, int cols, Span<double> gram)
    {
        if (rows < 0 || cols < 0 || x.Length != (long)rows * cols || gram.Length != (long)cols * cols)
            throw new ArgumentException($"AccumulateGramLower: x must be {rows}x{cols} and gram {cols}x{cols}");
        if (rows == 0 || cols == 0) return;
        fixed (double* px = x)
        fixed (double* pg = gram)
            OpenBlas.Dsyrk(OpenBlas.RowMajor, OpenBlas.Lower, OpenBlas.Trans, cols, rows, 1.0, px, cols, 1.0, pg, cols);
    }
}
