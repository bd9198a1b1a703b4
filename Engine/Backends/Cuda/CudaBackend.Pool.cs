using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Pooling over channels-last tensors, one thread per output value; each thread visits its window in (kh, kw) order,
// as the CPU backend does, so sums come out identical.
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, PoolArgs>? _pool2d;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, GlobalPoolArgs>? _globalAvgPool;

    // x: (N, H, W, C) → y: (N, OH, OW, Cy), channels [yOff, yOff + C): max over the window positions inside x.
    public void MaxPool2d(Tensor x, int kernel, int stride, int padding, Tensor destination, int destinationChannelOffset = 0)
    {
        var g = PoolArgs.Create("MaxPool2d", x, kernel, stride, padding, destination, destinationChannelOffset, PoolArgs.Max);
        Pool2d(x, destination, g);
    }

    // x: (N, H, W, C) → y: (N, OH, OW, Cy), channels [yOff, yOff + C): the window's sum divided by
    //   countIncludePad = false: the number of window positions inside x (TensorFlow's "SAME" average pool);
    //   countIncludePad = true:  the window clipped to the padded extent [−p, H + p) (PyTorch's default).
    public void AvgPool2d(Tensor x, int kernel, int stride, int padding, bool countIncludePad, Tensor destination, int destinationChannelOffset = 0)
    {
        var g = PoolArgs.Create("AvgPool2d", x, kernel, stride, padding, destination, destinationChannelOffset,
            countIncludePad ? PoolArgs.AvgPadded : PoolArgs.AvgInside);
        Pool2d(x, destination, g);
    }

    private void Pool2d(Tensor x, Tensor destination, PoolArgs g)
    {
        long outputs = (long)g.N * g.OH * g.OW * g.C;
        if (outputs == 0) return;
        _pool2d ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, PoolArgs>(PoolKernels.Pool2d);
        var work = Plan(outputs);
        _pool2d(work.Threads, work, View(x), View(destination), g);
    }

    // x: (N, H, W, C) → y: (N, C), y[n, c] = mean over (h, w) of x[n, h, w, c], summed in float64.
    public void GlobalAvgPool(Tensor x, Tensor destination)
    {
        var (n, hw, c) = OpChecks.GlobalAvgPool(x, destination);
        if ((long)n * c == 0) return;
        _globalAvgPool ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, GlobalPoolArgs>(PoolKernels.GlobalAvgPool);
        var work = Plan((long)n * c);
        _globalAvgPool(work.Threads, work, View(x), View(destination), new GlobalPoolArgs(hw, c));
    }
}

/// <summary>Geometry of one pool call (<see cref="OpChecks.Pool2d"/>) and its mode.</summary>
internal readonly struct PoolArgs
{
    public const int Max = 0, AvgInside = 1, AvgPadded = 2;

    public readonly int N, H, W, C, K, S, P, OH, OW, Cy, YOff, Mode;

    private PoolArgs(int n, int h, int w, int c, int k, int s, int p, int oh, int ow, int cy, int yOff, int mode)
    {
        (N, H, W, C, K, S, P, OH, OW, Cy, YOff, Mode) = (n, h, w, c, k, s, p, oh, ow, cy, yOff, mode);
    }

    public static PoolArgs Create(string op, Tensor x, int k, int s, int p, Tensor y, int yOff, int mode)
    {
        var g = OpChecks.Pool2d(op, x, k, s, p, y, yOff);
        return new PoolArgs(g.N, g.H, g.W, g.C, g.K, g.S, g.P, g.OH, g.OW, g.Cy, g.YOff, mode);
    }
}

/// <summary>Scalars of <see cref="PoolKernels.GlobalAvgPool"/>: pixels per image and channels.</summary>
internal readonly struct GlobalPoolArgs(int pixels, int channels)
{
    public readonly int Pixels = pixels, Channels = channels;
}

internal static class PoolKernels
{
    // x: (N, H, W, C) → y: (N, OH, OW, Cy), channel YOff + c; one thread per (n, oh, ow, c).
    // Window rows [oh·S − P, oh·S − P + K) ∩ [0, H), likewise columns, visited in (kh, kw) order.
    // Max: the largest value; AvgInside: sum / positions inside x; AvgPadded: sum / window clipped to [−P, H + P).
    public static void Pool2d(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, PoolArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long pixel = index / g.C;
            int c = (int)(index - pixel * g.C);
            int ow = (int)(pixel % g.OW);
            long nh = pixel / g.OW;
            int oh = (int)(nh % g.OH);
            long n = nh / g.OH;
            int h0 = oh * g.S - g.P, w0 = ow * g.S - g.P;
            int hLo = Math.Max(h0, 0), hHi = Math.Min(h0 + g.K, g.H);
            int wLo = Math.Max(w0, 0), wHi = Math.Min(w0 + g.K, g.W);
            float acc = 0f;
            int count = 0;
            for (int ih = hLo; ih < hHi; ih++)
                for (int iw = wLo; iw < wHi; iw++)
                {
                    float v = x[((n * g.H + ih) * g.W + iw) * g.C + c];
                    if (count == 0) acc = v;
                    else if (g.Mode == PoolArgs.Max) acc = MathF.Max(acc, v);
                    else acc += v;
                    count++;
                }
            if (g.Mode == PoolArgs.AvgInside) acc /= count;
            else if (g.Mode == PoolArgs.AvgPadded)
                acc /= (Math.Min(h0 + g.K, g.H + g.P) - h0) * (Math.Min(w0 + g.K, g.W + g.P) - w0);
            y[pixel * g.Cy + g.YOff + c] = acc;
    
        }
    }

    // x: (N, P, C) → y: (N, C), y[n, c] = (Σ_p x[n, p, c] in float64, p ascending) / P; one thread per (n, c).
    public static void GlobalAvgPool(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, GlobalPoolArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long n = index / g.Channels;
            int c = (int)(index - n * g.Channels);
            long at = n * g.Pixels * g.Channels + c;
            double sum = 0;
            for (int p = 0; p < g.Pixels; p++)
            {
                sum += x[at];
                at += g.Channels;
            }
            y[index] = (float)(sum / g.Pixels);
    
        }
    }
}
