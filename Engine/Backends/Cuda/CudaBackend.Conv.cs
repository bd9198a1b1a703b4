using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Convolution as a matrix product over channels-last activations, as on the CPU backend:
//     Y (M = N·OH·OW, Cout) = A (M, K = KH·KW·Cin) · B (K, Cout),
// where row r = (n·OH + oh)·OW + ow of A lists the input pixels under the window of output pixel (n, oh, ow) in
// (kh, kw, ci) order (im2col), and B is the packed weight (KH, KW, Cin, Cout). A 1×1 stride-1 unpadded convolution
// multiplies x itself (row stride Cx, offset xOff). Otherwise A is built chunk by chunk in a scratch buffer. Products go
// straight into the destination's channel window (row stride Cy, offset yOff); bias and ReLU follow as one kernel.
public sealed partial class CudaBackend
{
    /// <summary>im2col scratch per chunk, in floats (256 MiB); tests lower it to exercise the chunking.</summary>
    internal long Im2ColBudget { get; set; } = 64L << 20;

    private readonly object _floatScratchLock = new();
    private MemoryBuffer1D<float, Stride1D.Dense>? _floatScratch;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, Im2ColArgs>? _im2col;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, BiasWindowArgs>? _biasWindow;

    // weight: (Cout, Cin, KH, KW) as PyTorch stores it → packed: (KH, KW, Cin, Cout), i.e. the GEMM's B (K × Cout).
    public Tensor PackConv2dWeight(ReadOnlySpan<float> weightOihw, int outChannels, int inChannels, int kernelH, int kernelW)
    {
        long n = OpChecks.PackConv2dWeight(weightOihw, outChannels, inChannels, kernelH, kernelW);
        var packed = new float[n];
        for (int co = 0; co < outChannels; co++)
            for (int ci = 0; ci < inChannels; ci++)
                for (int y = 0; y < kernelH; y++)
                    for (int x = 0; x < kernelW; x++)
                        packed[((y * kernelW + x) * inChannels + ci) * outChannels + co] = weightOihw[((co * inChannels + ci) * kernelH + y) * kernelW + x];
        return FromHost(packed, kernelH, kernelW, inChannels, outChannels);
    }

    // x: (N, H, W, Cx) → y: (N, OH, OW, Cy); reads channels [xOff, xOff + Cin), writes [yOff, yOff + Cout).
    public void Conv2d(Tensor x, Tensor packedWeight, Tensor? bias, Conv2dParams p, Tensor destination,
        int sourceChannelOffset = 0, int destinationChannelOffset = 0)
    {
        var g = OpChecks.Conv2d(x, packedWeight, bias, p, destination, sourceChannelOffset, destinationChannelOffset);
        if (g.M == 0) return;
        ArrayView<float> vx = View(x), vw = View(packedWeight), vy = View(destination);
        var weight = new GemmOperand(vw, 0, g.Cout, 0, false);
        if (g.Direct)
        {
            _gemm.Run(new GemmShape(1, Extent(g.M), g.Cout, g.K, 1f, 0f),
                new GemmOperand(vx, g.XOff, g.Cx, 0, false), weight, new GemmOperand(vy, g.YOff, g.Cy, 0, false));
        }
        else
        {
            // Chunks of whole images when one image fits the budget, else of rows.
            long perImage = (long)g.OH * g.OW;
            long rows = Math.Max(1, Im2ColBudget / g.K);
            if (rows >= perImage) rows = rows / perImage * perImage;
            rows = Math.Min(rows, g.M);
            lock (_floatScratchLock) // the scratch buffer is shared by the calls of this backend
            {
                var scratch = FloatScratch(rows * g.K);
                _im2col ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, Im2ColArgs>(ConvKernels.Im2Col);
                for (long r0 = 0; r0 < g.M; r0 += rows)
                {
                    int count = (int)Math.Min(rows, g.M - r0);
                    var work = Plan((long)count * g.K);
                    _im2col(work.Threads, work, vx, scratch, new Im2ColArgs(g, r0));
                    _gemm.Run(new GemmShape(1, count, g.Cout, g.K, 1f, 0f),
                        new GemmOperand(scratch, 0, g.K, 0, false), weight, new GemmOperand(vy, r0 * g.Cy + g.YOff, g.Cy, 0, false));
                }
            }
        }
        if (bias is not null || g.Relu)
            BiasWindow(vy, vy, bias is null ? vy : View(bias), bias is not null, g.Relu, g.M, g.Cout, g.Cy, g.YOff);
    }

    // x (…, C) + bias (C), then max(·, 0) when relu.
    public void BiasActivation(Tensor x, Tensor bias, bool relu, Tensor destination)
    {
        int cols = OpChecks.BiasActivation(x, bias, destination);
        if (cols == 0 || x.Length == 0) return;
        long rows = x.Length / cols;
        BiasWindow(View(x), View(destination), View(bias), true, relu, rows, cols, cols, 0);
    }

    // y[r, off + j] = act(x[r, off + j] + bias[j]) for r < rows, j < cols; x and y (possibly the same) have row stride ld.
    private void BiasWindow(ArrayView<float> x, ArrayView<float> y, ArrayView<float> bias, bool withBias, bool relu, long rows, int cols, int ld, int offset)
    {
        _biasWindow ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, BiasWindowArgs>(ConvKernels.BiasWindow);
        var work = Plan(rows * cols);
        _biasWindow(work.Threads, work, x, y, bias, new BiasWindowArgs(cols, ld, offset, withBias, relu));
    }

    /// <summary>
    /// A device float buffer of at least <paramref name="length"/> elements, shared by the kernel families that need
    /// scratch space; callers hold <see cref="_floatScratchLock"/> from here until their last kernel using it is launched
    /// (kernels run in launch order on the default stream, so the next user cannot overtake them).
    /// </summary>
    private ArrayView<float> FloatScratch(long length)
    {
        if (_floatScratch == null || _floatScratch.Length < length)
        {
            Accelerator.Synchronize(); // the old buffer's last users have finished
            _floatScratch?.Dispose();
            _floatScratch = Accelerator.Allocate1D<float>(Math.Max(1024, length));
        }
        return _floatScratch.View.SubView(0, Math.Max(1, length));
    }
}

/// <summary>Scalars of <see cref="ConvKernels.Im2Col"/>: the convolution's geometry and the chunk's first row.</summary>
internal readonly struct Im2ColArgs(ConvShape g, long r0)
{
    public readonly int H = g.H, W = g.W, Cx = g.Cx, XOff = g.XOff, KW = g.KW, Cin = g.Cin, K = g.K;
    public readonly int SH = g.SH, SW = g.SW, PH = g.PH, PW = g.PW, OH = g.OH, OW = g.OW;
    public readonly long R0 = r0;
}

/// <summary>Scalars of <see cref="ConvKernels.BiasWindow"/>.</summary>
internal readonly struct BiasWindowArgs(int cols, int ld, int offset, bool withBias, bool relu)
{
    public readonly int Cols = cols, Ld = ld, Offset = offset;
    public readonly int WithBias = withBias ? 1 : 0, Relu = relu ? 1 : 0;
}

internal static class ConvKernels
{
    // x: (N, H, W, Cx) → a: (count, K), K = KH·KW·Cin in (kh, kw, ci) order; one thread per element of a.
    // a[i, (kh·KW + kw)·Cin + ci] = x[n, oh·SH − PH + kh, ow·SW − PW + kw, XOff + ci] for output row r = R0 + i
    // = (n·OH + oh)·OW + ow, or 0 where the window lies in the padding.
    public static void Im2Col(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> a, Im2ColArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long i = index / g.K;
            int k = (int)(index - i * g.K);
            long r = g.R0 + i;
            long perImage = (long)g.OH * g.OW;
            long n = r / perImage;
            int rest = (int)(r - n * perImage);
            int oh = rest / g.OW, ow = rest - oh * g.OW;
            int kwCin = g.KW * g.Cin;
            int kh = k / kwCin;
            int rem = k - kh * kwCin;
            int kw = rem / g.Cin, ci = rem - kw * g.Cin;
            int ih = oh * g.SH - g.PH + kh, iw = ow * g.SW - g.PW + kw;
            float v = 0f;
            if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                v = x[((n * g.H + ih) * g.W + iw) * g.Cx + g.XOff + ci];
            a[index] = v;
    
        }
    }

    // x, y: (rows, Ld) (the same view for in place), window [Offset, Offset + Cols); one thread per (row, j):
    // y[row, Offset + j] = act(x[row, Offset + j] + bias[j]), act = max(·, 0) when Relu.
    public static void BiasWindow(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ArrayView<float> bias, BiasWindowArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long row = index / g.Cols;
            int j = (int)(index - row * g.Cols);
            long at = row * g.Ld + g.Offset + j;
            float v = x[at];
            if (g.WithBias != 0) v += bias[j];
            if (g.Relu != 0) v = MathF.Max(v, 0f);
            y[at] = v;
    
        }
    }
}
