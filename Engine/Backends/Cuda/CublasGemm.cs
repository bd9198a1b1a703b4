using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace DyDiT.Eval.Engine.Backends.Cuda;

/// <summary>
/// Matrix products through cuBLAS (<c>cublasGemmStridedBatchedEx</c>, float32 in and out) on the backend's stream. The
/// precision picks the compute type: fp32 = CUBLAS_COMPUTE_32F, tf32 = ..._32F_FAST_TF32, bf16 = ..._32F_FAST_16BF
/// (bf16 tensor cores, fp32 accumulation, the inputs rounded by cuBLAS).
/// Row-major C (M, N) is column-major Cᵀ (N, M) = op(B)ᵀ·op(A)ᵀ, so the call passes B first.
/// </summary>
internal sealed unsafe class CublasGemm : IDeviceGemm
{
    private readonly Cublas _cublas;
    private readonly IntPtr _handle;
    private readonly int _computeType;

    public CublasGemm(CudaBackend backend, Precision precision)
    {
        var lib = CudaNative.TryLoad(CudaNative.CublasNames, out var name);
        if (lib == IntPtr.Zero) throw new DeviceUnavailableException("cuBLAS was not found (libcublas.so.13 or libcublas.so.12); run `dydit-eval doctor`");
        _cublas = new Cublas(lib, name!);
        _handle = _cublas.Create();
        _cublas.SetStream(_handle, ((CudaStream)backend.Accelerator.DefaultStream).StreamPtr);
        _computeType = precision switch
        {
            Precision.Tf32 => Cublas.Compute32FFastTf32,
            Precision.Bf16 => Cublas.Compute32FFast16Bf,
            _ => Cublas.Compute32F,
        };
    }

    public void Run(GemmShape s, GemmOperand a, GemmOperand b, GemmOperand c)
    {
        if (s.Batch == 0 || s.M == 0 || s.N == 0) return;
        float alpha = s.Alpha, beta = s.Beta;
        _cublas.GemmStridedBatched(_handle,
            b.Transposed ? Cublas.OpT : Cublas.OpN, a.Transposed ? Cublas.OpT : Cublas.OpN,
            s.N, s.M, s.K, &alpha,
            Address(b), Math.Max(1, b.Ld), b.Stride,
            Address(a), Math.Max(1, a.Ld), a.Stride,
            &beta, Address(c), Math.Max(1, c.Ld), c.Stride,
            s.Batch, _computeType);
    }

    private static IntPtr Address(GemmOperand o) => o.View.LoadEffectiveAddressAsPtr() + checked((nint)(o.Offset * sizeof(float)));

    public void Dispose() => _cublas.Destroy(_handle);
}

/// <summary>The cuBLAS entry points we call (v2 API), as function pointers.</summary>
internal sealed unsafe class Cublas
{
    public const int OpN = 0, OpT = 1;
    public const int CudaR32F = 0;                    // cudaDataType CUDA_R_32F
    public const int Compute32F = 68;                 // cublasComputeType_t CUBLAS_COMPUTE_32F
    public const int Compute32FFast16Bf = 75;         // CUBLAS_COMPUTE_32F_FAST_16BF
    public const int Compute32FFastTf32 = 77;         // CUBLAS_COMPUTE_32F_FAST_TF32
    public const int GemmDefault = -1;                // CUBLAS_GEMM_DEFAULT

    private readonly string _name;
    private readonly delegate* unmanaged<IntPtr*, int> _create;
    private readonly delegate* unmanaged<IntPtr, int> _destroy;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int> _setStream;
    private readonly delegate* unmanaged<IntPtr, int, int, int, int, int, void*, IntPtr, int, int, long, IntPtr, int, int, long, void*, IntPtr, int, int, long, int, int, int, int> _gemmEx;

    public Cublas(IntPtr lib, string name)
    {
        _name = name;
        _create = (delegate* unmanaged<IntPtr*, int>)CudaNative.Export(lib, "cublasCreate_v2", name);
        _destroy = (delegate* unmanaged<IntPtr, int>)CudaNative.Export(lib, "cublasDestroy_v2", name);
        _setStream = (delegate* unmanaged<IntPtr, IntPtr, int>)CudaNative.Export(lib, "cublasSetStream_v2", name);
        _gemmEx = (delegate* unmanaged<IntPtr, int, int, int, int, int, void*, IntPtr, int, int, long, IntPtr, int, int, long, void*, IntPtr, int, int, long, int, int, int, int>)
            CudaNative.Export(lib, "cublasGemmStridedBatchedEx", name);
    }

    /// <summary>"13.1.0" from cublasGetProperty (no handle, no GPU work).</summary>
    public static string Version(IntPtr lib, string name)
    {
        var getProperty = (delegate* unmanaged<int, int*, int>)CudaNative.Export(lib, "cublasGetProperty", name);
        int major, minor, patch;
        if (getProperty(0, &major) != 0 || getProperty(1, &minor) != 0 || getProperty(2, &patch) != 0)
            throw new DeviceUnavailableException($"{name}: cublasGetProperty failed");
        return $"{major}.{minor}.{patch}";
    }

    public IntPtr Create()
    {
        IntPtr h;
        Check(_create(&h), "cublasCreate");
        return h;
    }

    public void Destroy(IntPtr handle) => _destroy(handle);

    public void SetStream(IntPtr handle, IntPtr stream) => Check(_setStream(handle, stream), "cublasSetStream");

    public void GemmStridedBatched(IntPtr handle, int transA, int transB, int m, int n, int k, float* alpha,
        IntPtr a, int lda, long strideA, IntPtr b, int ldb, long strideB, float* beta, IntPtr c, int ldc, long strideC,
        int batch, int computeType)
        => Check(_gemmEx(handle, transA, transB, m, n, k, alpha, a, CudaR32F, lda, strideA, b, CudaR32F, ldb, strideB,
            beta, c, CudaR32F, ldc, strideC, batch, computeType, GemmDefault), "cublasGemmStridedBatchedEx");

    private void Check(int status, string call)
    {
        if (status != 0) throw new InvalidOperationException($"{_name}: {call} failed with cublasStatus_t {status}");
    }
}
