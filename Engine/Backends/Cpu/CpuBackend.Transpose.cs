using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Swap of the last two dimensions, e.g. NCHW ↔ NHWC seen as (N, C, H·W) ↔ (N, H·W, C).
public sealed unsafe partial class CpuBackend
{
    // Square tiles keep both the rows read and the rows written in cache.
    private const int TransposeTile = 32;

    // x: (…, R, C) → destination: (…, C, R), y[b, j, i] = x[b, i, j]
    public void TransposeLastTwo(Tensor x, Tensor destination)
    {
        var (rows, cols) = OpChecks.TransposeLastTwo(x, destination);
        if (x.Length == 0) return;
        long matrix = (long)rows * cols;
        long batch = x.Length / matrix;
        int tileRows = (rows + TransposeTile - 1) / TransposeTile;
        float* px = Pointer(x), py = Pointer(destination);
        // One task per (matrix, band of TransposeTile source rows).
        Parallel.For(0L, batch * tileRows, Options(x.Length), task =>
        {
            long b = task / tileRows;
            int i0 = (int)(task % tileRows) * TransposeTile, i1 = Math.Min(rows, i0 + TransposeTile);
            float* src = px + b * matrix, dst = py + b * matrix;
            for (int j0 = 0; j0 < cols; j0 += TransposeTile)
            {
                int j1 = Math.Min(cols, j0 + TransposeTile);
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < j1; j++)
                        dst[(long)j * rows + i] = src[(long)i * cols + j];
            }
        });
    }
}
