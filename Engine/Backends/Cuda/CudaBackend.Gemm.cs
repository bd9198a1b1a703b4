using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

public sealed partial class CudaBackend
{
    // C (M, N) = alpha · op(A) · op(B) + beta · C, row-major; A is (M, K) or, transposed, (K, M).
    public void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = OpChecks.Gemm(a, transposeA, b, transposeB, c);
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
        OpChecks.BatchedGemm(batch, m, n, k, a, strideA, b, strideB, c, strideC);
        _gemm.Run(new GemmShape(batch, m, n, k, alpha, beta),
            new GemmOperand(View(a), 0, transposeA ? m : k, strideA, transposeA),
            new GemmOperand(View(b), 0, transposeB ? k : n, strideB, transposeB),
            new GemmOperand(View(c), 0, n, strideC, false));
    }
}
