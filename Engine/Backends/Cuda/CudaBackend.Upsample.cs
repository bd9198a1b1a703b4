using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Nearest-neighbour 2× upsampling of channels-last images (torch.nn.functional.interpolate(scale_factor=2,
// mode="nearest")): y[n, i, j, c] = x[n, i / 2, j / 2, c] (integer division).
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, Upsample2xArgs>? _upsample2x;

    // x: (N, H, W, C) → destination: (N, 2H, 2W, C)
    public void UpsampleNearest2x(Tensor x, Tensor destination)
    {
        var (n, h, w, c) = OpChecks.UpsampleNearest2x(x, destination);
        if (destination.Length == 0) return;
        _upsample2x ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, Upsample2xArgs>(UpsampleKernels.Nearest2x);
        var work = Plan(destination.Length);
        _upsample2x(work.Threads, work, View(x), View(destination), new Upsample2xArgs(h, w, c));
    }
}

/// <summary>Scalars of <see cref="UpsampleKernels.Nearest2x"/>: the input's H, W, C.</summary>
internal readonly struct Upsample2xArgs(int h, int w, int c)
{
    public readonly int H = h, W = w, C = c;
}

internal static class UpsampleKernels
{
    // x: (N, H, W, C) → y: (N, 2H, 2W, C); one thread per output value: y[n, i, j, c] = x[n, i / 2, j / 2, c].
    public static void Nearest2x(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, Upsample2xArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long pixel = index / g.C;
            int c = (int)(index - pixel * g.C);
            int j = (int)(pixel % (2 * g.W));
            long ni = pixel / (2 * g.W);
            int i = (int)(ni % (2 * g.H));
            long n = ni / (2 * g.H);
            y[index] = x[((n * g.H + i / 2) * g.W + j / 2) * g.C + c];
    
        }
    }
}
