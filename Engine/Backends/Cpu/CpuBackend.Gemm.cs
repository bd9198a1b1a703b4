using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // C (M, N) = alpha · op(A) · op(B) + beta · C, row-major; A is (M, K) or, transposed, (K, M).
    public void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = OpChecks.Gemm(a, transposeA, b, transposeB, c);
        SgemmRaw(m, n, k, Pointer(a), transposeA, Pointer(b), transposeB, Pointer(c), alpha, beta);
    }

    public void BatchedGemm(int batch, int m, int n, int k,
        Tensor a, long strideA, bool transposeA,
        Tensor b, long strideB, bool transposeB,
        Tensor c, long strideC, float alpha = 1f, float beta = 0f)
    {
        OpChecks.BatchedGemm(batch, m, n, k, a, strideA, b, strideB, c, strideC);
        float* pa = Pointer(a), pb = Pointer(b), pc = Pointer(c);
        // OpenBLAS 0.3.21 has no batched entry point; each product is threaded by OpenBLAS itself.
        for (int i = 0; i < batch; i++)
            SgemmRaw(m, n, k, pa + i * strideA, transposeA, pb + i * strideB, transposeB, pc + i * strideC, alpha, beta);
    }

    /// <summary>Row-major sgemm on raw pointers with tightly packed matrices.</summary>
    internal static void SgemmRaw(int m, int n, int k, float* a, bool transposeA, float* b, bool transposeB, float* c, float alpha, float beta)
    {
        if (m == 0 || n == 0) return;
        int lda = transposeA ? m : k;
        int ldb = transposeB ? k : n;
        OpenBlas.Sgemm(OpenBlas.RowMajor, transposeA ? OpenBlas.Trans : OpenBlas.NoTrans, transposeB ? OpenBlas.Trans : OpenBlas.NoTrans,
            m, n, k, alpha, a, Math.Max(1, lda), b, Math.Max(1, ldb), beta, c, Math.Max(1, n));
    }
}
