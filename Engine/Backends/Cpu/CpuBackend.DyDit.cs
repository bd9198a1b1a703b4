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
        var (sourceRows, c) = RowsAndWidth(source, "GatherRows");
        CheckRowList(destination, rows.Length, c, "GatherRows");
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
        var (destinationRows, c) = RowsAndWidth(destination, "ScatterRows");
        CheckRowList(source, rows.Length, c, "ScatterRows");
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
        var (outFeatures, k) = WeightShape(weight, bias, "LinearRowBlocks");
        var (rows, xk) = RowsAndWidth(x, "LinearRowBlocks");
        if (xk != k) throw new ArgumentException($"LinearRowBlocks: x {x} does not have the weight's {k} input features");
        CheckBlocks(blocks, blockSize, outFeatures, "LinearRowBlocks", "output rows");
        int width = blocks.Length * blockSize;
        CheckRowList(destination, rows, width, "LinearRowBlocks");
        if (rows == 0 || width == 0) return;
        float* px = Pointer(x), pw = Pointer(weight), pb = Pointer(bias), py = Pointer(destination);
        for (int j = 0; j < blocks.Length;)
        {
            int run = RunLength(blocks, j);
            OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.Trans, rows, run * blockSize, k,
                1f, px, Math.Max(1, k), pw + (long)blocks[j] * blockSize * k, Math.Max(1, k), 0f, py + j * blockSize, width);
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
        var (outFeatures, k) = WeightShape(weight, bias, "LinearColumnBlocks");
        CheckBlocks(blocks, blockSize, k, "LinearColumnBlocks", "input columns");
        int width = blocks.Length * blockSize;
        var (rows, xWidth) = RowsAndWidth(x, "LinearColumnBlocks");
        if (xWidth != width) throw new ArgumentException($"LinearColumnBlocks: x {x} must hold {blocks.Length} blocks of {blockSize} columns");
        CheckRowList(destination, rows, outFeatures, "LinearColumnBlocks");
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
            int run = RunLength(blocks, j);
            OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.Trans, rows, outFeatures, run * blockSize,
                1f, px + j * blockSize, width, pw + (long)blocks[j] * blockSize, Math.Max(1, k), beta, py, outFeatures);
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

    /// <summary>How many blocks from index <paramref name="j"/> on are consecutive (block i + 1 follows block i).</summary>
    private static int RunLength(ReadOnlySpan<int> blocks, int j)
    {
        int run = 1;
        while (j + run < blocks.Length && blocks[j + run] == blocks[j + run - 1] + 1) run++;
        return run;
    }

    private static (int Rows, int Width) RowsAndWidth(Tensor t, string op)
    {
        if (t.Rank == 0) throw new ArgumentException($"{op}: {t} has no rows");
        int c = t.Dim(-1);
        long rows = c == 0 ? 0 : t.Length / c;
        if (rows > int.MaxValue) throw new ArgumentException($"{op}: {t} has too many rows");
        return ((int)rows, c);
    }

    private static void CheckRowList(Tensor t, int rows, int width, string op)
    {
        var (r, c) = RowsAndWidth(t, op);
        if (c != width || r != rows) throw new ArgumentException($"{op}: expected {rows} rows of {width} values, got {t}");
    }

    private static (int Out, int In) WeightShape(Tensor weight, Tensor bias, string op)
    {
        if (weight.Rank != 2) throw new ArgumentException($"{op}: weight must be (out, in), got {weight}");
        if (bias.Rank != 1 || bias.Dim(0) != weight.Dim(0)) throw new ArgumentException($"{op}: bias {bias} does not match weight {weight}");
        return (weight.Dim(0), weight.Dim(1));
    }

    private static void CheckBlocks(ReadOnlySpan<int> blocks, int blockSize, int extent, string op, string what)
    {
        if (blockSize <= 0 || extent % blockSize != 0) throw new ArgumentException($"{op}: {extent} {what} do not split into blocks of {blockSize}");
        int count = extent / blockSize;
        for (int j = 0; j < blocks.Length; j++)
        {
            if ((uint)blocks[j] >= (uint)count) throw new ArgumentOutOfRangeException(nameof(blocks), $"{op}: block {blocks[j]} is outside the {count} blocks of {what}");
            if (j > 0 && blocks[j] <= blocks[j - 1]) throw new ArgumentException($"{op}: blocks must be strictly increasing, got {blocks[j - 1]} then {blocks[j]}");
        }
    }
}
