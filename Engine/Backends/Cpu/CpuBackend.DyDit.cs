using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Kernels for dynamic-width / dynamic-token networks (DyDiT): row gather/scatter and linear layers restricted to
// blocks of their output rows or input columns. The block variants read the weight in place (leading dimension =
// the full width); consecutive blocks are merged into one GEMM, so a mask with r runs of active blocks costs r GEMMs.
public sealed unsafe partial class CpuBackend
{
    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var (sourceRows, c) = OpChecks.RowsAndWidth(source, "GatherRows");
        OpChecks.RowList(destination, rows.Length, c, "GatherRows");
        if (c == 0) return;
        float* ps = Pointer(source), pd = Pointer(destination);
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if ((uint)r >= (uint)sourceRows) throw new ArgumentOutOfRangeException(nameof(rows), $"GatherRows: row {r} at index {i} is outside the source's {sourceRows} rows");
            new ReadOnlySpan<float>(ps + (long)r * c, c).CopyTo(new Span<float>(pd + (long)i * c, c));
        }
    }

    public void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var (destinationRows, c) = OpChecks.RowsAndWidth(destination, "ScatterRows");
        OpChecks.RowList(source, rows.Length, c, "ScatterRows");
        if (c == 0) return;
        float* ps = Pointer(source), pd = Pointer(destination);
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if ((uint)r >= (uint)destinationRows) throw new ArgumentOutOfRangeException(nameof(rows), $"ScatterRows: row {r} at index {i} is outside the destination's {destinationRows} rows");
            new ReadOnlySpan<float>(ps + (long)i * c, c).CopyTo(new Span<float>(pd + (long)r * c, c));
        }
    }

    // y (R, n·bs) = x (R, K) · W[rows of the blocks]ᵀ + b[same rows]; block j of the output = weight rows [blocks[j]·bs, +bs)
    public void LinearRowBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination)
    {
        var (rows, k, width) = OpChecks.LinearRowBlocks(x, weight, bias, blocks, blockSize, destination);
        if (rows == 0 || width == 0) return;
        float* px = Pointer(x), pw = Pointer(weight), pb = Pointer(bias), py = Pointer(destination);
        for (int j = 0; j < blocks.Length;)
        {
            int run = OpChecks.RunLength(blocks, j);
            Sgemm(rows, run * blockSize, k, px, k, false, pw + (long)blocks[j] * blockSize * k, k, true,
                py + j * blockSize, width, 1f, 0f);
            j += run;
        }
        // the selected bias values, then one pass over the rows (GEMM first, bias after: the order of nn.Linear here)
        var selected = new float[width];
        for (int j = 0; j < blocks.Length; j++)
            new ReadOnlySpan<float>(pb + (long)blocks[j] * blockSize, blockSize).CopyTo(selected.AsSpan(j * blockSize));
        ForRowBlocks(rows, width, (r0, count) =>
        {
            for (long r = r0; r < r0 + count; r++)
            {
                var row = new Span<float>(py + r * width, width);
                TensorPrimitives.Add(row, selected, row);
            }
        });
    }

    // y (R, O) = Σ_j x[:, j·bs, +bs) · W[:, blocks[j]·bs, +bs)ᵀ + b; x holds the active blocks side by side
    public void LinearColumnBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination)
    {
        var (rows, outFeatures, k, width) = OpChecks.LinearColumnBlocks(x, weight, bias, blocks, blockSize, destination);
        if (rows == 0 || outFeatures == 0) return;
        float* px = Pointer(x), pw = Pointer(weight), pb = Pointer(bias), py = Pointer(destination);
        if (blocks.Length == 0)
        {
            ForRowBlocks(rows, outFeatures, (r0, count) =>
            {
                for (long r = r0; r < r0 + count; r++) new ReadOnlySpan<float>(pb, outFeatures).CopyTo(new Span<float>(py + r * outFeatures, outFeatures));
            });
            return;
        }
        float beta = 0f;
        for (int j = 0; j < blocks.Length;)
        {
            int run = OpChecks.RunLength(blocks, j);
            Sgemm(rows, outFeatures, run * blockSize, px + j * blockSize, width, false, pw + (long)blocks[j] * blockSize, k, true,
                py, outFeatures, 1f, beta);
            beta = 1f; // later runs accumulate
            j += run;
        }
        ForRowBlocks(rows, outFeatures, (r0, count) =>
        {
            var b = new ReadOnlySpan<float>(pb, outFeatures);
            for (long r = r0; r < r0 + count; r++)
            {
                var row = new Span<float>(py + r * outFeatures, outFeatures);
                TensorPrimitives.Add(row, b, row);
            }
        });
    }
}
