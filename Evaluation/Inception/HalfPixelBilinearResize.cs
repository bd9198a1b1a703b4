using System.Numerics;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>
/// PyTorch <c>F.interpolate(mode='bilinear', align_corners=False, antialias=False)</c> (half-pixel centres), the
/// resize in pytorch-fid's <c>InceptionV3.forward</c>. Positions as in <see cref="BilinearTaps.HalfPixel"/>; values
/// combined as PyTorch's CPU kernel (AVX2 build) does: <c>t = fma(a, w0, b·w1)</c> along x, then
/// <c>out = fma(t_top, w0, t_bottom·w1)</c> along y. Bit-exact with the torch 1.13 CPU results in fixtures/resize;
/// a PyTorch build that does not contract into FMA differs by about one float32 ulp. Layout NHWC.
/// </summary>
public sealed class HalfPixelBilinearResize : BilinearResize
{
    public HalfPixelBilinearResize(int inputHeight, int inputWidth, int outputHeight, int outputWidth)
        : base(new SeparableBilinearResize<Kernel>(inputHeight, inputWidth, outputHeight, outputWidth))
    {
    }

    /// <summary>One-shot resize of an NHWC batch [count,height,width,channels] to [count,outputHeight,outputWidth,channels].</summary>
    public static float[] Resize(ReadOnlySpan<float> input, int count, int height, int width, int channels, int outputHeight, int outputWidth) =>
        ResizeOnce(new HalfPixelBilinearResize(height, width, outputHeight, outputWidth), input, count, channels);

    internal readonly struct Kernel : IBilinearKernel
    {
        public static BilinearTaps Taps(int inputSize, int outputSize) => BilinearTaps.HalfPixel(inputSize, outputSize);

        public static float Horizontal(float left, float right, float lowWeight, float highWeight) =>
            MathF.FusedMultiplyAdd(left, lowWeight, right * highWeight);

        public static void Vertical(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, float lowWeight, float highWeight, Span<float> destination)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var w0 = new Vector<float>(lowWeight);
                var w1 = new Vector<float>(highWeight);
                for (; i <= destination.Length - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var a = new Vector<float>(top.Slice(i));
                    var b = new Vector<float>(bottom.Slice(i));
                    Vector.FusedMultiplyAdd(a, w0, b * w1).CopyTo(destination.Slice(i));
                }
            }
            for (; i < destination.Length; i++)
                destination[i] = MathF.FusedMultiplyAdd(top[i], lowWeight, bottom[i] * highWeight);
        }
    }
}
