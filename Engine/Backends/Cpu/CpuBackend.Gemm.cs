using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // C (M, N) = alpha · op(A) · op(B) + beta · C, row-major; A is (M, K) or, transposed, (K, M).
    public void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        if (a.Rank != 2 || b.Rank != 2 || c.Rank != 2)
            throw new ArgumentException($"Gemm takes matrices, got {a}, {b}, {c}");
        int m = transposeA ? a.Dim(1) : a.Dim(0);
        int k = transposeA ? a.Dim(0) : a.Dim(1);
        int kb = transposeB ? b.Dim(1) : b.Dim(0);
        int n = transposeB ? b.Dim(0) : b.Dim(1);
        if (k != kb || c.Dim(0) != m || c.Dim(1) != n)
            throw new ArgumentException($"Gemm shapes do not agree: op(A) {m}x{k}, op(B) {kb}x{n}, C {c.Dim(0)}x{c.Dim(1)}");
        SgemmRaw(m, n, k, Pointer(a), transposeA, Pointer(b), transposeB, Pointer(c), alpha, beta);
    }

    public void BatchedGemm(int batch, int m, int n, int k,
        Tensor a, long strideA, bool transposeA,
        Tensor b, long strideB, bool transposeB,
        Tensor c, long strideC, float alpha = 1f, float beta = 0f)
    {
        CheckBatchExtent(a, batch, strideA, (long)m * k, "A");
        CheckBatchExtent(b, batch, strideB, (long)k * n, "B");
        CheckBatchExtent(c, batch, strideC, (long)m * n, "C");
        float* pa = Pointer(a), pb = Pointer(b), pc = Pointer(c);
        // OpenBLAS 0.3.21 has no batched entry point; each product is threaded by OpenBLAS itself.
        for (int i = 0; i < batch; i++)
            SgemmRaw(m, n, k, pa + i * strideA, transposeA, pb + i * strideB, transposeB, pc + i * strideC, alpha, beta);
    }

    private static void CheckBatchExtent(Tensor t, int batch, long stride, long matrix, string which)
    {
        if (batch < 0 || stride < 0) throw new ArgumentException($"negative batch or stride for {which}");
        long needed = batch == 0 ? 0 : (batch - 1) * stride + matrix;
        if (needed > t.Length)
            throw new ArgumentException($"BatchedGemm: {which} needs {needed} elements ({batch} matrices, stride {stride}) but {t} has {t.Length}");
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
