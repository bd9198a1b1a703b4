using System.Numerics;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>
/// TensorFlow 1 legacy <c>ResizeBilinear</c> (<c>align_corners=False</c>, no half-pixel centres, no antialiasing),
/// what ADM's Inception graph applies to its 0..255 float input. Float32 throughout, in TF's order:
/// <c>top = a + (b − a)·tx</c>, <c>bottom = c + (d − c)·tx</c>, <c>out = top + (bottom − top)·ty</c> (no fused
/// multiply-add). Bit-exact with torch-fidelity's <c>interpolate_bilinear_2d_like_tensorflow1x</c> (fixtures/resize).
/// Layout NHWC; an instance holds the taps for one (input, output) size and may be shared between threads.
/// </summary>
public sealed class Tf1BilinearResize : BilinearResize
{
    public Tf1BilinearResize(int inputHeight, int inputWidth, int outputHeight, int outputWidth)
        : base(new SeparableBilinearResize<Kernel>(inputHeight, inputWidth, outputHeight, outputWidth))
    {
    }

    /// <summary>One-shot resize of an NHWC batch [count,height,width,channels] to [count,outputHeight,outputWidth,channels].</summary>
    public static float[] Resize(ReadOnlySpan<float> input, int count, int height, int width, int channels, int outputHeight, int outputWidth) =>
        ResizeOnce(new Tf1BilinearResize(height, width, outputHeight, outputWidth), input, count, channels);

    internal readonly struct Kernel : IBilinearKernel
    {
        public static BilinearTaps Taps(int inputSize, int outputSize) => BilinearTaps.Tf1(inputSize, outputSize);

        public static float Horizontal(float left, float right, float lowWeight, float highWeight) => left + (right - left) * highWeight;

        public static void Vertical(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, float lowWeight, float highWeight, Span<float> destination)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var t = new Vector<float>(highWeight);
                for (; i <= destination.Length - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var a = new Vector<float>(top.Slice(i));
                    var b = new Vector<float>(bottom.Slice(i));
                    (a + (b - a) * t).CopyTo(destination.Slice(i));
                }
            }
            for (; i < destination.Length; i++)
                destination[i] = top[i] + (bottom[i] - top[i]) * highWeight;
        }
    }
}
