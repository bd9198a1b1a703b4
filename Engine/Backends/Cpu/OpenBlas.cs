using System.Reflection;
using System.Runtime.InteropServices;

namespace DyDiT.Eval.Engine.Backends.Cpu;

/// <summary>
/// P/Invoke surface of OpenBLAS (Debian's libopenblas0-pthread): CBLAS sgemm and the Fortran LAPACK dsyevd.
/// The library is looked up under its usual Debian names; <see cref="EnsureLoaded"/> turns a missing library
/// into an <see cref="OpenBlasMissingException"/> that says how to install it.
/// </summary>
internal static unsafe partial class OpenBlas
{
    private const string Lib = "openblas";

    // Names tried in order: Debian's alternatives link, the pthread build's own folder, a plain dev link.
    private static readonly string[] Candidates =
    [
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libopenblas.so",
        "libopenblas.dylib",
        "libopenblas.dll",
    ];

    private static readonly Lazy<IntPtr> Handle = new(Load);

    static OpenBlas()
    {
        NativeLibrary.SetDllImportResolver(typeof(OpenBlas).Assembly, Resolve);
    }

    public const int RowMajor = 101;
    public const int NoTrans = 111;
    public const int Trans = 112;

    [LibraryImport(Lib, EntryPoint = "cblas_sgemm")]
    public static partial void Sgemm(int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Lib, EntryPoint = "openblas_set_num_threads")]
    public static partial void SetNumThreads(int threads);

    [LibraryImport(Lib, EntryPoint = "openblas_get_num_threads")]
    public static partial int GetNumThreads();

    [LibraryImport(Lib, EntryPoint = "openblas_get_corename")]
    private static partial IntPtr GetCoreNamePtr();

    [LibraryImport(Lib, EntryPoint = "openblas_get_config")]
    private static partial IntPtr GetConfigPtr();

    // Fortran ABI (gfortran): every argument by reference, hidden lengths of the two CHARACTER arguments last.
    [LibraryImport(Lib, EntryPoint = "dsyevd_")]
    public static partial void Dsyevd(byte* jobz, byte* uplo, int* n, double* a, int* lda, double* w,
        double* work, int* lwork, int* iwork, int* liwork, int* info, nuint jobzLength, nuint uploLength);

    public static string CoreName => Marshal.PtrToStringAnsi(GetCoreNamePtr()) ?? "?";

    public static string Config => Marshal.PtrToStringAnsi(GetConfigPtr()) ?? "?";

    /// <summary>
    /// Loads the library now and makes every BLAS/LAPACK call run on its calling thread: OpenBLAS's own threads would
    /// split products by the thread count, and we split them ourselves by shape (GemmTiles) so that bits never depend
    /// on it. Throws <see cref="OpenBlasMissingException"/> if the library is not installed.
    /// </summary>
    public static void EnsureLoaded() => _ = Configured.Value;

    private static readonly Lazy<bool> Configured = new(() =>
    {
        _ = Handle.Value;
        SetNumThreads(1);
        return true;
    });

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
        => name == Lib ? Handle.Value : IntPtr.Zero;

    private static IntPtr Load()
    {
        var tried = new List<string>();
        // DYDIT_OPENBLAS names the one library to use (e.g. a custom build) instead of the usual names.
        var overridePath = Environment.GetEnvironmentVariable("DYDIT_OPENBLAS");
        foreach (var candidate in string.IsNullOrEmpty(overridePath) ? Candidates : [overridePath])
        {
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
            tried.Add(candidate);
        }
        throw new OpenBlasMissingException(tried);
    }
}

/// <summary>OpenBLAS could not be loaded. The CLI maps this to exit code 3.</summary>
public sealed class OpenBlasMissingException(IReadOnlyList<string> tried) : Exception(
    "OpenBLAS is not installed (tried " + string.Join(", ", tried) + "). Install it with:\n" + InstallCommand)
{
    public const string InstallCommand = "sudo apt-get install -y libopenblas0-pthread";
}
