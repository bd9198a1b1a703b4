using DyDiT.Eval.Engine.Backends.Cpu;

namespace DyDiT.Eval.Engine.LinearAlgebra;

public static unsafe partial class HostLinearAlgebra
{
    public static void SymmetricEigen(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues, Span<double> eigenvectors)
    {
        long nn = (long)n * n;
        if (n < 0 || matrix.Length != nn || eigenvectors.Length != nn || eigenvalues.Length != n)
            throw new ArgumentException($"SymmetricEigen: n={n} needs a {n}x{n} matrix, {n} eigenvalues and {n}x{n} eigenvectors");
        if (n == 0) return;
        // LAPACK is column-major: our row-major lower triangle is its upper triangle. On exit column j of the
        // column-major result is eigenvector j, i.e. row j of what we hand back.
        matrix.CopyTo(eigenvectors);
        byte jobz = (byte)'V', uplo = (byte)'U';
        int nn32 = n, lda = n, info = 0, lwork = -1, liwork = -1, iworkQuery = 0;
        double workQuery = 0;
        fixed (double* a = eigenvectors)
        fixed (double* w = eigenvalues)
        {
            OpenBlas.Dsyevd(&jobz, &uplo, &nn32, a, &lda, w, &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1);
            if (info != 0) throw new InvalidOperationException($"dsyevd workspace query failed (info={info})");
            lwork = (int)workQuery;
            liwork = iworkQuery;
            var work = new double[lwork];
            var iwork = new int[liwork];
            fixed (double* pw = work)
            fixed (int* piw = iwork)
                OpenBlas.Dsyevd(&jobz, &uplo, &nn32, a, &lda, w, pw, &lwork, piw, &liwork, &info, 1, 1);
        }
        if (info < 0) throw new ArgumentException($"dsyevd: argument {-info} is invalid");
        if (info > 0) throw new InvalidOperationException($"dsyevd did not converge ({info} off-diagonal elements left)");
    }
}
