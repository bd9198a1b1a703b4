namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>
/// Per-output-index sample positions of one axis of a bilinear resize: the two source indices and their
/// float32 weights, computed once per (input size, output size) exactly as the reference implementation does.
/// </summary>
internal sealed class BilinearTaps
{
    private BilinearTaps(int inputSize, int outputSize)
    {
        InputSize = inputSize;
        OutputSize = outputSize;
        Low = new int[outputSize];
        High = new int[outputSize];
        LowWeight = new float[outputSize];
        HighWeight = new float[outputSize];
    }

    public int InputSize { get; }

    public int OutputSize { get; }

    /// <summary>Lower source index of each output index.</summary>
    public int[] Low { get; }

    /// <summary>Upper source index (clamped to the last input index).</summary>
    public int[] High { get; }

    /// <summary>Weight of <see cref="Low"/> (PyTorch); unused by TF1, which interpolates as <c>a + (b − a)·t</c>.</summary>
    public float[] LowWeight { get; }

    /// <summary>Fraction <c>t</c> / weight of <see cref="High"/>.</summary>
    public float[] HighWeight { get; }

    /// <summary>
    /// TF1 legacy <c>ResizeBilinear</c> (align_corners=False, no half-pixel centres), all in float32:
    /// <c>scale = (float)in / (float)out</c>, <c>src = (float)i · scale</c>, <c>lo = floor(src)</c>,
    /// <c>hi = min(lo + 1, in − 1)</c>, <c>t = src − lo</c>.
    /// </summary>
    public static BilinearTaps Tf1(int inputSize, int outputSize)
    {
        Validate(inputSize, outputSize);
        var taps = new BilinearTaps(inputSize, outputSize);
        float scale = (float)inputSize / (float)outputSize;
        for (int i = 0; i < outputSize; i++)
        {
            float src = (float)i * scale;
            int lo = Math.Min((int)MathF.Floor(src), inputSize - 1);
            taps.Low[i] = lo;
            taps.High[i] = Math.Min(lo + 1, inputSize - 1);
            float t = src - lo;
            taps.HighWeight[i] = t;
            taps.LowWeight[i] = 1f - t;
        }
        return taps;
    }

    /// <summary>
    /// PyTorch <c>F.interpolate(mode='bilinear', align_corners=False)</c> on CPU (half-pixel centres):
    /// <c>scale = (float)in / out</c> in float32; <c>src = scale·(i + 0.5) − 0.5</c> evaluated in float64 and
    /// clamped at 0; <c>lo = min((int)src, in − 1)</c>, <c>hi = lo + (lo &lt; in − 1)</c>;
    /// <c>w1 = (float)(src − lo)</c>, <c>w0 = 1 − w1</c> in float32. Equal sizes copy (<c>w0 = 1, w1 = 0</c>).
    /// This is the arithmetic that reproduces the fixtures (torch 1.13 CPU) bit for bit.
    /// </summary>
    public static BilinearTaps HalfPixel(int inputSize, int outputSize)
    {
        Validate(inputSize, outputSize);
        var taps = new BilinearTaps(inputSize, outputSize);
        float scale = (float)inputSize / outputSize;
        for (int i = 0; i < outputSize; i++)
        {
            if (inputSize == outputSize)
            {
                taps.Low[i] = taps.High[i] = i;
                taps.LowWeight[i] = 1f;
                taps.HighWeight[i] = 0f;
                continue;
            }
            double src = (double)scale * (i + 0.5) - 0.5;
            if (src < 0) src = 0;
            int lo = Math.Min((int)src, inputSize - 1);
            taps.Low[i] = lo;
            taps.High[i] = lo + (lo < inputSize - 1 ? 1 : 0);
            float w1 = (float)Math.Clamp(src - lo, 0.0, 1.0);
            taps.HighWeight[i] = w1;
            taps.LowWeight[i] = 1f - w1;
        }
        return taps;
    }

    private static void Validate(int inputSize, int outputSize)
    {
        if (inputSize <= 0) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, "input size must be positive");
        if (outputSize <= 0) throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "output size must be positive");
    }
}
