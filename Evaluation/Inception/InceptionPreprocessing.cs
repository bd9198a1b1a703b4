using System.Numerics;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>
/// Turns an NHWC image batch (uint8, or float 0..255 as ADM accepts) of any size into the FID Inception network's
/// input: float32 NHWC [N, 299, 299, 3] in [−1, 1].
/// <list type="bullet">
/// <item><see cref="PreprocessMode.Adm"/>: <c>float32(x)</c> → <see cref="Tf1BilinearResize"/> to 299×299 →
/// <c>(x − 128)·0.0078125</c> (TF's <c>Sub</c>, <c>Mul</c>; equal to <c>(x − 128)/128</c> bit for bit).</item>
/// <item><see cref="PreprocessMode.PytorchFid"/>: <c>float32(x)/255</c> (float32 division) →
/// <see cref="HalfPixelBilinearResize"/> to 299×299 → <c>2·x − 1</c>.</item>
/// </list>
/// Resize taps are computed once per input size and reused; instances are thread-safe.
/// </summary>
public sealed class InceptionPreprocessing
{
    /// <summary>Side of the network input.</summary>
    public const int ImageSize = 299;

    /// <summary>Colour channels (RGB).</summary>
    public const int Channels = 3;

    private BilinearResizeSpec? _spec;
    private Tf1BilinearResize? _tf1;
    private HalfPixelBilinearResize? _halfPixel;

    public InceptionPreprocessing(PreprocessMode mode)
    {
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, null);
        Mode = mode;
    }

    public PreprocessMode Mode { get; }

    /// <summary>Number of floats the output of <paramref name="count"/> images holds (count·299·299·3).</summary>
    public static long OutputLength(int count) => (long)count * ImageSize * ImageSize * Channels;

    /// <summary>Preprocesses [count,height,width,3] uint8 images into <paramref name="output"/> [count,299,299,3].</summary>
    public void Apply(ReadOnlySpan<byte> images, int count, int height, int width, Span<float> output) => Run(images, count, height, width, output);

    /// <summary>Preprocesses [count,height,width,3] float images with values 0..255 (not rescaled) into <paramref name="output"/>.</summary>
    public void Apply(ReadOnlySpan<float> images, int count, int height, int width, Span<float> output) => Run(images, count, height, width, output);

    /// <summary>
    /// The same preprocessing as a backend op (<see cref="IBackend.ResizeBilinear"/>) for images of
    /// <paramref name="height"/>×<paramref name="width"/> given as float 0..255: the same taps and the same float32
    /// expressions as <see cref="Apply(ReadOnlySpan{float}, int, int, int, Span{float})"/>, so that the resize runs where
    /// the network runs.
    /// </summary>
    public BilinearResizeSpec Spec(int height, int width)
    {
        var cached = _spec;
        if (cached != null && cached.Rows.InputSize == height && cached.Columns.InputSize == width) return cached;
        return _spec = Mode == PreprocessMode.Adm
            ? new BilinearResizeSpec(Axis(BilinearTaps.Tf1(height, ImageSize)), Axis(BilinearTaps.Tf1(width, ImageSize)), BilinearBlend.Lerp,
                InputDivisor: 1f, Subtract: 128f, Multiply: 0.0078125f, MultiplyFirst: false)
            : new BilinearResizeSpec(Axis(BilinearTaps.HalfPixel(height, ImageSize)), Axis(BilinearTaps.HalfPixel(width, ImageSize)), BilinearBlend.FusedWeightedSum,
                InputDivisor: 255f, Subtract: 1f, Multiply: 2f, MultiplyFirst: true);

        static ResizeAxis Axis(BilinearTaps t) => new(t.InputSize, t.Low, t.High, t.LowWeight, t.HighWeight);
    }

    /// <summary>Preprocesses [count,height,width,3] uint8 images; returns [count,299,299,3].</summary>
    public float[] Apply(ReadOnlySpan<byte> images, int count, int height, int width)
    {
        var output = new float[OutputLength(count)];
        Run(images, count, height, width, output);
        return output;
    }

    /// <summary>Preprocesses [count,height,width,3] float images (0..255); returns [count,299,299,3].</summary>
    public float[] Apply(ReadOnlySpan<float> images, int count, int height, int width)
    {
        var output = new float[OutputLength(count)];
        Run(images, count, height, width, output);
        return output;
    }

    private void Run<T>(ReadOnlySpan<T> images, int count, int height, int width, Span<float> output) where T : unmanaged, INumberBase<T>
    {
        if (height <= 0) throw new ArgumentOutOfRangeException(nameof(height), height, "image height must be positive");
        if (width <= 0) throw new ArgumentOutOfRangeException(nameof(width), width, "image width must be positive");
        switch (Mode)
        {
            case PreprocessMode.Adm:
                {
                    var plan = _tf1;
                    if (plan == null || plan.InputHeight != height || plan.InputWidth != width)
                        _tf1 = plan = new Tf1BilinearResize(height, width, ImageSize, ImageSize);
                    plan.Plan.Run(images, count, Channels, output, inputDivisor: 1f, PixelNormalisation.Adm);
                    break;
                }
            case PreprocessMode.PytorchFid:
                {
                    var plan = _halfPixel;
                    if (plan == null || plan.InputHeight != height || plan.InputWidth != width)
                        _halfPixel = plan = new HalfPixelBilinearResize(height, width, ImageSize, ImageSize);
                    plan.Plan.Run(images, count, Channels, output, inputDivisor: 255f, PixelNormalisation.PytorchFid);
                    break;
                }
            default:
                throw new InvalidOperationException($"unknown preprocessing mode {Mode}");
        }
    }
}
