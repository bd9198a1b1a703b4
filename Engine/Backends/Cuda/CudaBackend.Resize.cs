using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, ResizeArgs>? _resizeBilinear;

    public void ResizeBilinear(Tensor x, BilinearResizeSpec spec, Tensor destination)
    {
        spec.Check(x, destination);
        if (destination.Length == 0) return;
        // the taps as one int list: row Low, High, weights (float bits), then the same for the columns
        int oh = spec.Rows.OutputSize, ow = spec.Columns.OutputSize;
        var taps = new int[4 * (oh + ow)];
        Pack(spec.Rows, taps.AsSpan(0, 4 * oh));
        Pack(spec.Columns, taps.AsSpan(4 * oh));
        _resizeBilinear ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<int>, ResizeArgs>(ResizeKernels.Bilinear);
        var args = new ResizeArgs(x.Dim(1), x.Dim(2), x.Dim(3), oh, ow, spec.Blend == BilinearBlend.Lerp ? 1 : 0,
            spec.InputDivisor, spec.Subtract, spec.Multiply, spec.MultiplyFirst ? 1 : 0);
        var work = Plan(destination.Length);
        _resizeBilinear(work.Threads, work, View(x), View(destination), UploadInts(taps), args);
    }

    private static void Pack(ResizeAxis axis, Span<int> into)
    {
        int n = axis.OutputSize;
        axis.Low.CopyTo(into);
        axis.High.CopyTo(into[n..]);
        for (int i = 0; i < n; i++)
        {
            into[2 * n + i] = BitConverter.SingleToInt32Bits(axis.LowWeight[i]);
            into[3 * n + i] = BitConverter.SingleToInt32Bits(axis.HighWeight[i]);
        }
    }
}

internal readonly record struct ResizeArgs(int H, int W, int C, int OH, int OW, int Lerp, float Divisor, float Subtract, float Multiply, int MultiplyFirst);

internal static class ResizeKernels
{
    // x: (N, H, W, C) → y: (N, OH, OW, C); one output value per item, by the float32 expressions of CpuBackend.ResizeBilinear.
    // taps: row Low, High, LowWeight bits, HighWeight bits (OH each), then the columns' (OW each).
    public static void Bilinear(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ArrayView<int> taps, ResizeArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            int ch = (int)(index % g.C);
            long rest = index / g.C;
            int j = (int)(rest % g.OW);
            rest /= g.OW;
            int i = (int)(rest % g.OH);
            long image = rest / g.OH;
            int cols = 4 * g.OH;
            long baseImage = image * g.H * g.W * g.C;
            long top = baseImage + (long)taps[i] * g.W * g.C, bottom = baseImage + (long)taps[g.OH + i] * g.W * g.C;
            int left = taps[cols + j] * g.C + ch, right = taps[cols + g.OW + j] * g.C + ch;
            float cwl = Interop.IntAsFloat((uint)taps[cols + 2 * g.OW + j]), cwh = Interop.IntAsFloat((uint)taps[cols + 3 * g.OW + j]);
            float rwl = Interop.IntAsFloat((uint)taps[2 * g.OH + i]), rwh = Interop.IntAsFloat((uint)taps[3 * g.OH + i]);
            float t = Blend(Value(x, top + left, g), Value(x, top + right, g), cwl, cwh, g.Lerp);
            float b = Blend(Value(x, bottom + left, g), Value(x, bottom + right, g), cwl, cwh, g.Lerp);
            float r = Blend(t, b, rwl, rwh, g.Lerp);
            y[index] = g.MultiplyFirst != 0 ? r * g.Multiply - g.Subtract : (r - g.Subtract) * g.Multiply;
        }
    }

    private static float Value(ArrayView<float> x, long at, ResizeArgs g) => g.Divisor != 1f ? x[at] / g.Divisor : x[at];

    private static float Blend(float a, float b, float wa, float wb, int lerp)
        => lerp != 0 ? a + (b - a) * wb : MathF.FusedMultiplyAdd(a, wa, b * wb);
}
