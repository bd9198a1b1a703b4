using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Nearest-neighbour 2× upsampling of channels-last images (torch.nn.functional.interpolate(scale_factor=2,
// mode="nearest")): y[n, i, j, c] = x[n, i / 2, j / 2, c] (integer division).
public sealed unsafe partial class CpuBackend
{
    // x: (N, H, W, C) → destination: (N, 2H, 2W, C)
    public void UpsampleNearest2x(Tensor x, Tensor destination)
    {
        var (n, h, w, c) = OpChecks.UpsampleNearest2x(x, destination);
        float* px = Pointer(x), py = Pointer(destination);
        long outRow = 2L * w * c; // floats in one output image row
        // One task per input row i: it fills output rows 2i and 2i + 1.
        Parallel.For(0L, (long)n * h, Options(destination.Length), row =>
        {
            var source = new ReadOnlySpan<float>(px + row * w * c, w * c);
            var even = new Span<float>(py + 2 * row * outRow, (int)outRow);
            for (int j = 0; j < w; j++)
            {
                var pixel = source.Slice(j * c, c);
                pixel.CopyTo(even.Slice(2 * j * c, c));
                pixel.CopyTo(even.Slice((2 * j + 1) * c, c));
            }
            even.CopyTo(new Span<float>(py + (2 * row + 1) * outRow, (int)outRow));
        });
    }
}
