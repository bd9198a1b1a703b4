using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

public sealed partial class CudaBackend
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
        _gemm.Run(new GemmShape(1, m, n, k, alpha, beta),
            new GemmOperand(View(a), 0, a.Dim(1), 0, transposeA),
            new GemmOperand(View(b), 0, b.Dim(1), 0, transposeB),
            new GemmOperand(View(c), 0, n, 0, false));
    }

    public void BatchedGemm(int batch, int m, int n, int k,
        Tensor a, long strideA, bool transposeA,
        Tensor b, long strideB, bool transposeB,
        Tensor c, long strideC, float alpha = 1f, float beta = 0f)
    {
        CheckBatchExtent(a, batch, strideA, (long)m * k, "A");
        CheckBatchExtent(b, batch, strideB, (long)k * n, "B");
        CheckBatchExtent(c, batch, strideC, (long)m * n, "C");
        _gemm.Run(new GemmShape(batch, m, n, k, alpha, beta),
            new GemmOperand(View(a), 0, transposeA ? m : k, strideA, transposeA),
            new GemmOperand(View(b), 0, transposeB ? k : n, strideB, transposeB),
            new GemmOperand(View(c), 0, n, strideC, false));
    }

    private static void CheckBatchExtent(Tensor t, int batch, long stride, long matrix, string which)
    {
        if (batch < 0 || stride < 0) throw new ArgumentException($"negative batch or stride for {which}");
        long needed = batch == 0 ? 0 : (batch - 1) * stride + matrix;
        if (needed > t.Length)
            throw new ArgumentException($"BatchedGemm: {which} needs {needed} elements ({batch} matrices, stride {stride}) but {t} has {t.Length}");
    }
}
