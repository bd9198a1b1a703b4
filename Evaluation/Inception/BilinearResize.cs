using System.Numerics;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>What a resize plan offers, whatever its interpolation kernel.</summary>
internal interface IResizePlan
{
    int InputHeight { get; }
    int InputWidth { get; }
    int OutputHeight { get; }
    int OutputWidth { get; }
    long OutputLength(int count, int channels);
    void Run<TIn>(ReadOnlySpan<TIn> input, int count, int channels, Span<float> output, float inputDivisor = 1f,
        PixelNormalisation normalisation = PixelNormalisation.None) where TIn : unmanaged, INumberBase<TIn>;
}

/// <summary>
/// A bilinear resize of NHWC batches from one (height, width) to another. An instance holds the taps for its sizes
/// and may be shared between threads. <see cref="Tf1BilinearResize"/> and <see cref="HalfPixelBilinearResize"/>
/// differ only in sample positions and in how they combine the two taps.
/// </summary>
public abstract class BilinearResize
{
    private protected BilinearResize(IResizePlan plan) => Plan = plan;

    internal IResizePlan Plan { get; }

    public int InputHeight => Plan.InputHeight;

    public int InputWidth => Plan.InputWidth;

    public int OutputHeight => Plan.OutputHeight;

    public int OutputWidth => Plan.OutputWidth;

    /// <summary>Resizes <paramref name="count"/> images [H,W,C] (C order) into <paramref name="output"/> [count,outH,outW,C].</summary>
    public void Resize(ReadOnlySpan<float> input, int count, int channels, Span<float> output) => Plan.Run(input, count, channels, output);

    /// <summary>As the float overload; uint8 values are converted to float32 exactly (as ADM's <c>astype(np.float32)</c>).</summary>
    public void Resize(ReadOnlySpan<byte> input, int count, int channels, Span<float> output) => Plan.Run(input, count, channels, output);

    private protected static float[] ResizeOnce(BilinearResize resize, ReadOnlySpan<float> input, int count, int channels)
    {
        var output = new float[resize.Plan.OutputLength(count, channels)];
        resize.Resize(input, count, channels, output);
        return output;
    }
}
