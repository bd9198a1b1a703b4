using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Swap of the last two dimensions, e.g. NCHW ↔ NHWC seen as (N, C, H·W) ↔ (N, H·W, C).
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, TransposeArgs>? _transposeLastTwo;

    // x: (…, R, C) → destination: (…, C, R), y[b, j, i] = x[b, i, j]
    public void TransposeLastTwo(Tensor x, Tensor destination)
    {
        var (rows, cols) = OpChecks.TransposeLastTwo(x, destination);
        if (x.Length == 0) return;
        _transposeLastTwo ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, TransposeArgs>(TransposeKernels.LastTwo);
        var work = Plan(x.Length);
        _transposeLastTwo(work.Threads, work, View(x), View(destination), new TransposeArgs(rows, cols));
    }
}

/// <summary>Scalars of <see cref="TransposeKernels.LastTwo"/>: the source's last two dimensions.</summary>
internal readonly struct TransposeArgs(int rows, int cols)
{
    public readonly int Rows = rows, Cols = cols;
}

internal static class TransposeKernels
{
    // x: (B, R, C) → y: (B, C, R); one thread per output value (consecutive threads write consecutive values):
    // y[b, j, i] = x[b, i, j].
    public static void LastTwo(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, TransposeArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long bj = index / g.Rows;
            int i = (int)(index - bj * g.Rows);
            long b = bj / g.Cols;
            int j = (int)(bj - b * g.Cols);
            y[index] = x[(b * g.Rows + i) * g.Cols + j];
    
        }
    }
}
