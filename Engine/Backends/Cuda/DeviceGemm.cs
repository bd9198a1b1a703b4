using ILGPU;
using ILGPU.Runtime;

namespace DyDiT.Eval.Engine.Backends.Cuda;

/// <summary>
/// One operand of a row-major strided-batched matrix product: matrix i starts at element <c>Offset + i·Stride</c> of
/// <c>View</c>, consecutive rows are <c>Ld</c> elements apart. A transposed operand is stored as its transpose.
/// </summary>
internal readonly record struct GemmOperand(ArrayView<float> View, long Offset, int Ld, long Stride, bool Transposed);

/// <summary>Scalars of one batched product C_i = alpha·op(A_i)·op(B_i) + beta·C_i, C_i: (M, N), K summed.</summary>
internal readonly record struct GemmShape(int Batch, int M, int N, int K, float Alpha, float Beta);

/// <summary>Where a backend's matrix products are computed: cuBLAS on a GPU, <see cref="ReferenceGemm"/> elsewhere.</summary>
internal interface IDeviceGemm : IDisposable
{
    /// <summary>Row-major C_i = alpha·op(A_i)·op(B_i) + beta·C_i for i in [0, batch); with beta = 0, C is not read.</summary>
    void Run(GemmShape shape, GemmOperand a, GemmOperand b, GemmOperand c);
}

/// <summary>
/// The reference matrix product: one thread per output element, K summed in ascending order in float32. The oracle the
/// cuBLAS path is checked against, and the product ILGPU's CPU accelerator uses.
/// </summary>
internal sealed class ReferenceGemm(CudaBackend backend) : IDeviceGemm
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmKernelArgs>? _kernel;

    public void Run(GemmShape s, GemmOperand a, GemmOperand b, GemmOperand c)
    {
        long outputs = (long)s.Batch * s.M * s.N;
        if (outputs == 0) return;
        _kernel ??= backend.Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmKernelArgs>(GemmKernels.Reference);
        var work = backend.Plan(outputs);
        _kernel(work.Threads, work, a.View, b.View, c.View, new GemmKernelArgs(s, a, b, c));
    }

    public void Dispose() { }
}

/// <summary>Everything <see cref="GemmKernels.Reference"/> needs besides the three views (one struct: ILGPU kernels take few parameters).</summary>
internal readonly struct GemmKernelArgs(GemmShape s, GemmOperand a, GemmOperand b, GemmOperand c)
{
    public readonly int M = s.M, N = s.N, K = s.K;
    public readonly float Alpha = s.Alpha, Beta = s.Beta;
    public readonly long OffA = a.Offset, OffB = b.Offset, OffC = c.Offset;
    public readonly long StrideA = a.Stride, StrideB = b.Stride, StrideC = c.Stride;
    public readonly int LdA = a.Ld, LdB = b.Ld, LdC = c.Ld;
    public readonly int TransA = a.Transposed ? 1 : 0, TransB = b.Transposed ? 1 : 0;
}

internal static class GemmKernels
{
    // C_b (M, N) = alpha · op(A_b) (M, K) · op(B_b) (K, N) + beta · C_b; one thread per (b, i, j).
    // A element (i, k) is a[offA + b·strideA + i·ldA + k], or a[… + k·ldA + i] when transposed (likewise B).
    public static void Reference(Index1D thread, Work work, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmKernelArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long mn = (long)g.M * g.N;
            long batch = index / mn;
            long rest = index - batch * mn;
            int i = (int)(rest / g.N), j = (int)(rest - (long)i * g.N);
            long baseA = g.OffA + batch * g.StrideA, baseB = g.OffB + batch * g.StrideB;
            long stepA = g.TransA != 0 ? g.LdA : 1, stepB = g.TransB != 0 ? 1 : g.LdB;
            long pa = baseA + (g.TransA != 0 ? i : (long)i * g.LdA);
            long pb = baseB + (g.TransB != 0 ? (long)j * g.LdB : j);
            float sum = 0f;
            for (int k = 0; k < g.K; k++)
            {
                sum += a[pa] * b[pb];
                pa += stepA;
                pb += stepB;
            }
            long pc = g.OffC + batch * g.StrideC + (long)i * g.LdC + j;
            c[pc] = g.Beta == 0f ? g.Alpha * sum : g.Alpha * sum + g.Beta * c[pc];
    
        }
    }
}
