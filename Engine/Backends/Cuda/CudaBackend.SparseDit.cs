using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Resizing kernels of FlexDiT (SparseDiT) on channels-last token grids: adaptive average pooling and nearest-neighbour
// resizing back. (Its attention is in CudaBackend.Attention.cs, its broadcast gated residual in CudaBackend.Transformer.cs.)
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ResizeShape>? _adaptiveAvgPool, _upsampleNearest;

    // x: (N, H, W, C) → y: (N, OH, OW, C), each output pixel the mean of its bin (PyTorch's start/end index rule)
    public void AdaptiveAvgPool2d(Tensor x, Tensor destination)
    {
        var shape = ResizeShapes(x, destination, "AdaptiveAvgPool2d");
        if (shape.H == 0 || shape.W == 0) throw new ArgumentException($"AdaptiveAvgPool2d of an empty map {x}");
        if (destination.Length == 0) return;
        _adaptiveAvgPool ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ResizeShape>(SparseDitKernels.AdaptiveAvgPool2d);
        var work = Plan(destination.Length);
        _adaptiveAvgPool(work.Threads, work, View(x), View(destination), shape);
    }

    // x: (N, H, W, C) → y: (N, OH, OW, C), y[n, i, j] = x[n, src(i), src(j)] with PyTorch's nearest source index
    public void UpsampleNearest(Tensor x, Tensor destination)
    {
        var shape = ResizeShapes(x, destination, "UpsampleNearest");
        if ((shape.H == 0 || shape.W == 0) && destination.Length > 0) throw new ArgumentException($"UpsampleNearest of an empty map {x}");
        if (destination.Length == 0) return;
        _upsampleNearest ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ResizeShape>(SparseDitKernels.UpsampleNearest);
        var work = Plan(destination.Length);
        _upsampleNearest(work.Threads, work, View(x), View(destination), shape);
    }

    private static ResizeShape ResizeShapes(Tensor x, Tensor destination, string op)
    {
        if (x.Rank != 4 || destination.Rank != 4 || destination.Dim(0) != x.Dim(0) || destination.Dim(3) != x.Dim(3))
            throw new ArgumentException($"{op} maps (N, H, W, C) to (N, OH, OW, C), got {x} → {destination}");
        int h = x.Dim(1), w = x.Dim(2), oh = destination.Dim(1), ow = destination.Dim(2);
        // PyTorch's nearest scale in float32, computed here on the host exactly as the CPU backend does
        float scaleH = oh == 0 ? 0f : (float)h / oh, scaleW = ow == 0 ? 0f : (float)w / ow;
        return new ResizeShape(h, w, x.Dim(3), oh, ow, scaleH, scaleW);
    }
}

/// <summary>Input and output grid of a channels-last resize, with the float32 nearest-neighbour scales in / out.</summary>
internal readonly record struct ResizeShape(int H, int W, int C, int OH, int OW, float ScaleH, float ScaleW);

internal static class SparseDitKernels
{
    // x: (N, H, W, C) → y: (N, OH, OW, C), one thread per y element: the mean over rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) and
    // columns likewise, summed in row-major order in float32
    public static void AdaptiveAvgPool2d(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ResizeShape s)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long rest = index;
            int k = (int)(rest % s.C);
            rest /= s.C;
            int j = (int)(rest % s.OW);
            rest /= s.OW;
            int i = (int)(rest % s.OH);
            long img = rest / s.OH;
            int h0 = (int)((long)i * s.H / s.OH), h1 = (int)(((long)(i + 1) * s.H + s.OH - 1) / s.OH);
            int w0 = (int)((long)j * s.W / s.OW), w1 = (int)(((long)(j + 1) * s.W + s.OW - 1) / s.OW);
            float sum = 0f;
            for (int yy = h0; yy < h1; yy++)
                for (int xx = w0; xx < w1; xx++)
                    sum += x[((img * s.H + yy) * s.W + xx) * s.C + k];
            y[index] = sum / ((h1 - h0) * (w1 - w0));
    
        }
    }

    // x: (N, H, W, C) → y: (N, OH, OW, C), one thread per y element: y[n, i, j, k] = x[n, src(i), src(j), k] with
    // src = identity when sizes agree, i >> 1 when doubling, else min(⌊i · scale⌋, in − 1) in float32
    public static void UpsampleNearest(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ResizeShape s)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long rest = index;
            int k = (int)(rest % s.C);
            rest /= s.C;
            int j = (int)(rest % s.OW);
            rest /= s.OW;
            int i = (int)(rest % s.OH);
            long img = rest / s.OH;
            int si = NearestSource(i, s.H, s.OH, s.ScaleH), sj = NearestSource(j, s.W, s.OW, s.ScaleW);
            y[index] = x[((img * s.H + si) * s.W + sj) * s.C + k];
    
        }
    }

    private static int NearestSource(int i, int inSize, int outSize, float scale)
    {
        if (outSize == inSize) return i;
        if (outSize == 2 * inSize) return i >> 1;
        float product = i * scale;
        return Math.Min((int)MathF.Floor(product), inSize - 1);
    }
}
