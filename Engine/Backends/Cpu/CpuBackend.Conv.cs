using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Convolution as a matrix product over channels-last activations.
//
// With x: (N, H, W, Cx) and the packed weight B: (KH, KW, Cin, Cout) = a (K = KH·KW·Cin) × Cout matrix, every output
// pixel (n, oh, ow) is one row r = (n·OH + oh)·OW + ow of
//     Y (M = N·OH·OW, Cout) = A (M, K) · B (K, Cout),
// where row r of A lists the input pixels under the kernel window in (kh, kw, ci) order ("im2col"). A 1×1 convolution
// with stride 1 needs no im2col at all: A is x itself (row stride Cx). Rows are processed in chunks; each worker
// thread fills its own chunk of A in a private buffer and multiplies it with single-threaded sgemm, so the copy and
// the product of one chunk stay in that core's cache and the two never wait for each other.
public sealed unsafe partial class CpuBackend
{
    // im2col buffer per worker, in floats (4 MiB): large enough for efficient sgemm calls, small enough for L2/L3.
    private const int Im2ColBudget = 1 << 20;
    // Fewest rows worth one sgemm call (below this, B's packing cost dominates).
    private const int MinRowsPerCall = 128;
    // Rows per call for 1×1 convolutions, which read A in place.
    private const int DirectRowsPerCall = 2048;
    // Pieces a convolution is cut into (at least): a constant, not the thread count, so that the bits are the same for any.
    private const int SplitPieces = 8;

    // weight: (Cout, Cin, KH, KW) as PyTorch stores it → packed: (KH, KW, Cin, Cout), i.e. the GEMM's B (K × Cout).
    public Tensor PackConv2dWeight(ReadOnlySpan<float> weightOihw, int outChannels, int inChannels, int kernelH, int kernelW)
    {
        long n = OpChecks.PackConv2dWeight(weightOihw, outChannels, inChannels, kernelH, kernelW);
        var packed = new Tensor(this, new CpuStorage(n, zero: false), [kernelH, kernelW, inChannels, outChannels]);
        var dst = Span(packed);
        for (int co = 0; co < outChannels; co++)
            for (int ci = 0; ci < inChannels; ci++)
                for (int y = 0; y < kernelH; y++)
                    for (int x = 0; x < kernelW; x++)
                        dst[((y * kernelW + x) * inChannels + ci) * outChannels + co] = weightOihw[((co * inChannels + ci) * kernelH + y) * kernelW + x];
        return packed;
    }

    // x: (N, H, W, Cx) → y: (N, OH, OW, Cy); reads channels [xOff, xOff + Cin), writes [yOff, yOff + Cout).
    public void Conv2d(Tensor x, Tensor packedWeight, Tensor? bias, Conv2dParams p, Tensor destination,
        int sourceChannelOffset = 0, int destinationChannelOffset = 0)
    {
        var g = OpChecks.Conv2d(x, packedWeight, bias, p, destination, sourceChannelOffset, destinationChannelOffset);
        if (g.M == 0) return;
        float* px = Pointer(x), pw = Pointer(packedWeight), py = Pointer(destination);
        float* pb = bias is null ? null : Pointer(bias);

        int rowsPerCall = g.Direct ? DirectRowsPerCall : Math.Max(MinRowsPerCall, Im2ColBudget / g.K);
        int chunks = (int)Math.Min(int.MaxValue, (g.M + rowsPerCall - 1) / rowsPerCall);
        // The cut depends on the shape only (never on the thread count), so the bits do not either.
        if (chunks < SplitPieces && g.M < (long)SplitPieces * MinRowsPerCall)
        {
            ConvSplitColumns(g, px, pw, pb, py);
            return;
        }
        // Equal-sized chunks, a multiple of SplitPieces of them, so that 1, 2, 4 or 8 threads finish together.
        chunks = (chunks + SplitPieces - 1) / SplitPieces * SplitPieces;
        int rows = (int)((g.M + chunks - 1) / chunks);
        chunks = (int)((g.M + rows - 1) / rows);

        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads },
            () => g.Direct ? null : new NativeBuffer(_pool, (long)rows * g.K),
            (chunk, _, buffer) =>
            {
                long r0 = (long)chunk * rows;
                int count = (int)Math.Min(rows, g.M - r0);
                float* a;
                int lda;
                if (g.Direct)
                {
                    a = px + r0 * g.Cx + g.XOff;
                    lda = g.Cx;
                }
                else
                {
                    a = buffer!.Pointer;
                    lda = g.K;
                    Im2Col(g, px, r0, count, a);
                }
                float* c = py + r0 * g.Cy + g.YOff;
                SgemmStrided(count, g.Cout, g.K, a, lda, pw, g.Cout, c, g.Cy);
                if (pb != null || g.Relu) BiasActivationRows(c, count, g.Cout, g.Cy, pb, g.Relu);
                return buffer;
            },
            buffer => buffer?.Dispose());
    }

    // Few output rows (small feature maps, small batches): build A once, then give each thread a slice of the columns.
    private void ConvSplitColumns(in ConvShape g, float* px, float* pw, float* pb, float* py)
    {
        int m = (int)g.M;
        using var buffer = g.Direct ? null : new NativeBuffer(_pool, (long)m * g.K);
        float* a = g.Direct ? px + g.XOff : buffer!.Pointer;
        int lda = g.Direct ? g.Cx : g.K;
        if (!g.Direct) Im2Col(g, px, 0, m, a);
        // Column slices in multiples of 16 (one AVX-512 register), as many as the shape allows up to SplitPieces.
        int pieces = Math.Min(SplitPieces, Math.Max(1, g.Cout / 16));
        int width = (g.Cout + pieces - 1) / pieces;
        width = (width + 15) / 16 * 16;
        pieces = (g.Cout + width - 1) / width;
        var gg = g;
        Parallel.For(0, pieces, new ParallelOptions { MaxDegreeOfParallelism = Threads }, piece =>
        {
            int c0 = piece * width;
            int n = Math.Min(width, gg.Cout - c0);
            float* c = py + gg.YOff + c0;
            SgemmStrided(m, n, gg.K, a, lda, pw + c0, gg.Cout, c, gg.Cy);
            if (pb != null || gg.Relu) BiasActivationRows(c, m, n, gg.Cy, pb == null ? null : pb + c0, gg.Relu);
        });
    }

    // Reference im2col. For output rows [r0, r0 + count): a[(r − r0)·K + (kh·KW + kw)·Cin + ci] =
    //   x[n, oh·sh − ph + kh, ow·sw − pw + kw, xOff + ci], or 0 where that position is in the padding.
    private static void Im2Col(in ConvShape g, float* x, long r0, int count, float* a)
    {
        int kwCin = g.KW * g.Cin;
        // A whole kernel row is one contiguous run of x when the window reads every channel of x.
        bool wholeRows = g.Cin == g.Cx;
        long perImage = (long)g.OH * g.OW;
        for (int i = 0; i < count; i++)
        {
            long r = r0 + i;
            int n = (int)(r / perImage);
            int rem = (int)(r - n * perImage);
            int oh = rem / g.OW, ow = rem - oh * g.OW;
            int ih0 = oh * g.SH - g.PH, iw0 = ow * g.SW - g.PW;
            float* dst = a + (long)i * g.K;
            for (int kh = 0; kh < g.KH; kh++, dst += kwCin)
            {
                int ih = ih0 + kh;
                if ((uint)ih >= (uint)g.H)
                {
                    new Span<float>(dst, kwCin).Clear();
                    continue;
                }
                float* srcRow = x + ((long)n * g.H + ih) * g.W * g.Cx + g.XOff;
                if (wholeRows && iw0 >= 0 && iw0 + g.KW <= g.W)
                {
                    Unsafe.CopyBlockUnaligned(dst, srcRow + (long)iw0 * g.Cx, (uint)(kwCin * sizeof(float)));
                    continue;
                }
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int iw = iw0 + kw;
                    float* d = dst + kw * g.Cin;
                    if ((uint)iw >= (uint)g.W) new Span<float>(d, g.Cin).Clear();
                    else Unsafe.CopyBlockUnaligned(d, srcRow + (long)iw * g.Cx, (uint)(g.Cin * sizeof(float)));
                }
            }
        }
    }

    // x (…, C) + bias (C), then max(·, 0) when relu.
    public void BiasActivation(Tensor x, Tensor bias, bool relu, Tensor destination)
    {
        int cols = OpChecks.BiasActivation(x, bias, destination);
        if (cols == 0 || x.Length == 0) return;
        long rows = x.Length / cols;
        float* px = Pointer(x), pd = Pointer(destination), pb = Pointer(bias);
        if (px != pd) Buffer.MemoryCopy(px, pd, x.Length * sizeof(float), x.Length * sizeof(float));
        long perPiece = Math.Max(1, ParallelThreshold / cols);
        long pieces = (rows + perPiece - 1) / perPiece;
        Parallel.For(0L, pieces, Options(x.Length), i =>
        {
            long r0 = i * perPiece;
            BiasActivationRows(pd + r0 * cols, (int)Math.Min(perPiece, rows - r0), cols, cols, pb, relu);
        });
    }

    // rows × cols block with row stride ld: c[r, j] = act(c[r, j] + bias[j]).
    private static void BiasActivationRows(float* c, int rows, int cols, int ld, float* bias, bool relu)
    {
        var b = bias == null ? default : new ReadOnlySpan<float>(bias, cols);
        for (int r = 0; r < rows; r++)
        {
            var row = new Span<float>(c + (long)r * ld, cols);
            if (bias != null) TensorPrimitives.Add(row, b, row);
            if (relu) TensorPrimitives.Max(row, 0f, row);
        }
    }

    /// <summary>Row-major sgemm with explicit leading dimensions, no transposes, beta = 0.</summary>
    private static void SgemmStrided(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        if (m == 0 || n == 0) return;
        OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, m, n, k, 1f, a, lda, b, ldb, 0f, c, ldc);
    }

    /// <summary>64-byte aligned scratch memory of one worker, from the backend's pool.</summary>
    private sealed class NativeBuffer(CpuMemoryPool pool, long floats) : IDisposable
    {
        public float* Pointer { get; private set; } = pool.Rent(floats);

        public void Dispose()
        {
            if (Pointer != null) pool.Return(Pointer, floats);
            Pointer = null;
        }
    }
}
