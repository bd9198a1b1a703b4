using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Kernels for dynamic-width / dynamic-token networks (DyDiT): row gather/scatter and linear layers restricted to blocks
// of their output rows or input columns. The block variants read the weight in place through GEMM offsets (leading
// dimension = the full width); consecutive blocks are merged into one GEMM, so r runs of active blocks cost r GEMMs.
// The bias is added afterwards by a kernel (GEMM first, bias after, as nn.Linear is computed on the CPU backend).
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>? _gatherRows, _scatterRows;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>? _addBlockBias;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, int, int>? _rowBias;

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var (sourceRows, c) = OpChecks.RowsAndWidth(source, "GatherRows");
        OpChecks.RowList(destination, rows.Length, c, "GatherRows");
        for (int i = 0; i < rows.Length; i++)
            if ((uint)rows[i] >= (uint)sourceRows)
                throw new ArgumentOutOfRangeException(nameof(rows), $"GatherRows: row {rows[i]} at index {i} is outside the source's {sourceRows} rows");
        if (c == 0 || rows.Length == 0) return;
        _gatherRows ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(DyDitKernels.GatherRows);
        var work = Plan(destination.Length);
        _gatherRows(work.Threads, work, View(source), View(destination), UploadInts(rows), c);
    }

    public void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var (destinationRows, c) = OpChecks.RowsAndWidth(destination, "ScatterRows");
        OpChecks.RowList(source, rows.Length, c, "ScatterRows");
        for (int i = 0; i < rows.Length; i++)
            if ((uint)rows[i] >= (uint)destinationRows)
                throw new ArgumentOutOfRangeException(nameof(rows), $"ScatterRows: row {rows[i]} at index {i} is outside the destination's {destinationRows} rows");
        if (c == 0 || rows.Length == 0) return;
        _scatterRows ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(DyDitKernels.ScatterRows);
        var work = Plan(source.Length);
        _scatterRows(work.Threads, work, View(source), View(destination), UploadInts(rows), c);
    }

    // y (R, n·bs) = x (R, K) · W[rows of the blocks]ᵀ + b[same rows]; block j of the output = weight rows [blocks[j]·bs, +bs)
    public void LinearRowBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination)
    {
        var (rows, k, width) = OpChecks.LinearRowBlocks(x, weight, bias, blocks, blockSize, destination);
        if (rows == 0 || width == 0) return;
        ArrayView<float> vx = View(x), vw = View(weight), vy = View(destination);
        var deviceBlocks = UploadInts(blocks); // before the GEMMs: the upload waits for the work queued so far
        for (int j = 0; j < blocks.Length;)
        {
            int run = OpChecks.RunLength(blocks, j);
            // y[:, j·bs, +run·bs) = x · W[blocks[j]·bs, +run·bs)ᵀ, W rows read in place (ld = K)
            GemmEngine.Run(new GemmShape(1, rows, run * blockSize, k, 1f, 0f),
                new GemmOperand(vx, 0, Math.Max(1, k), 0, false),
                new GemmOperand(vw, (long)blocks[j] * blockSize * k, Math.Max(1, k), 0, true),
                new GemmOperand(vy, (long)j * blockSize, width, 0, false));
            j += run;
        }
        _addBlockBias ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(DyDitKernels.AddBlockBias);
        var work = Plan(destination.Length);
        _addBlockBias(work.Threads, work, vy, View(bias), deviceBlocks, width, blockSize);
    }

    // y (R, O) = Σ_j x[:, j·bs, +bs) · W[:, blocks[j]·bs, +bs)ᵀ + b; x holds the active blocks side by side
    public void LinearColumnBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination)
    {
        var (rows, outFeatures, k, width) = OpChecks.LinearColumnBlocks(x, weight, bias, blocks, blockSize, destination);
        if (rows == 0 || outFeatures == 0) return;
        ArrayView<float> vx = View(x), vw = View(weight), vy = View(destination);
        float beta = 0f;
        for (int j = 0; j < blocks.Length;)
        {
            int run = OpChecks.RunLength(blocks, j);
            // y (+)= x[:, j·bs, +run·bs) · W[:, blocks[j]·bs, +run·bs)ᵀ, both read in place
            GemmEngine.Run(new GemmShape(1, rows, outFeatures, run * blockSize, 1f, beta),
                new GemmOperand(vx, (long)j * blockSize, width, 0, false),
                new GemmOperand(vw, (long)blocks[j] * blockSize, Math.Max(1, k), 0, true),
                new GemmOperand(vy, 0, outFeatures, 0, false));
            beta = 1f; // later runs accumulate
            j += run;
        }
        // no blocks: y = b in every row; otherwise y += b
        _rowBias ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, int, int>(DyDitKernels.RowBias);
        var work = Plan(destination.Length);
        _rowBias(work.Threads, work, vy, View(bias), outFeatures, blocks.Length == 0 ? 0 : 1);
    }
}

internal static class DyDitKernels
{
    // source: (S, C), rows: (R) → destination: (R, C), one thread per destination element: d[i, :] = s[rows[i], :]
    public static void GatherRows(Index1D thread, Work work, ArrayView<float> source, ArrayView<float> destination, ArrayView<int> rows, int c)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long i = index / c;
            long k = index - i * c;
            destination[index] = source[(long)rows[i] * c + k];
    
        }
    }

    // source: (R, C), rows: (R) → destination: (D, C), one thread per source element: d[rows[i], :] = s[i, :]
    // (with a repeated row the winner is unspecified; DyDiT's token lists are distinct)
    public static void ScatterRows(Index1D thread, Work work, ArrayView<float> source, ArrayView<float> destination, ArrayView<int> rows, int c)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long i = index / c;
            long k = index - i * c;
            destination[(long)rows[i] * c + k] = source[index];
    
        }
    }

    // y: (R, n·bs), bias: (O), blocks: (n), one thread per y element: y[r, j·bs + e] += bias[blocks[j]·bs + e]
    public static void AddBlockBias(Index1D thread, Work work, ArrayView<float> y, ArrayView<float> bias, ArrayView<int> blocks, int width, int blockSize)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            int column = (int)(index % width);
            int j = column / blockSize;
            y[index] = y[index] + bias[(long)blocks[j] * blockSize + column - j * blockSize];
    
        }
    }

    // y: (R, O), bias: (O), one thread per y element: y[r, o] = bias[o] (add = 0) or y[r, o] + bias[o] (add = 1)
    public static void RowBias(Index1D thread, Work work, ArrayView<float> y, ArrayView<float> bias, int width, int add)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            float b = bias[index % width];
            y[index] = add != 0 ? y[index] + b : b;
    
        }
    }
}
