using System.Runtime.InteropServices;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Float64 BLAS/LAPACK entry points used by the statistics (covariance, Fréchet distance).
internal static unsafe partial class OpenBlas
{
    public const int Lower = 122;
    public const int Left = 141;
    public const int Right = 142;
    public const int NonUnit = 131;

    [LibraryImport(Lib, EntryPoint = "cblas_dgemm")]
    public static partial void Dgemm(int order, int transA, int transB, int m, int n, int k,
        double alpha, double* a, int lda, double* b, int ldb, double beta, double* c, int ldc);

    [LibraryImport(Lib, EntryPoint = "cblas_dsyrk")]
    public static partial void Dsyrk(int order, int uplo, int trans, int n, int k, double alpha, double* a, int lda, double beta, double* c, int ldc);

    [LibraryImport(Lib, EntryPoint = "cblas_dtrmm")]
    public static partial void Dtrmm(int order, int side, int uplo, int transA, int diag, int m, int n, double alpha, double* a, int lda, double* b, int ldb);

    [LibraryImport(Lib, EntryPoint = "dpotrf_")]
    public static partial void Dpotrf(byte* uplo, int* n, double* a, int* lda, int* info, nuint uploLength);
}
