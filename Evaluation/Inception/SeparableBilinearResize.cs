using System.Buffers;
using System.Numerics;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>
/// Shared driver of the bilinear resizes on NHWC batches: the taps of both axes are computed once per
/// (input, output) size; each work item (one image, one block of output rows) first interpolates the input
/// rows it needs along x (each row once), then blends pairs of those rows along y. Because every output value
/// is computed by the same float32 expression as the reference kernel, the split changes no bit.
/// </summary>
internal sealed class SeparableBilinearResize<TKernel> : IResizePlan where TKernel : IBilinearKernel
{
    public SeparableBilinearResize(int inputHeight, int inputWidth, int outputHeight, int outputWidth)
    {
        Rows = TKernel.Taps(inputHeight, outputHeight);
        Columns = TKernel.Taps(inputWidth, outputWidth);
    }

    public BilinearTaps Rows { get; }

    public BilinearTaps Columns { get; }

    public int InputHeight => Rows.InputSize;

    public int InputWidth => Columns.InputSize;

    public int OutputHeight => Rows.OutputSize;

    public int OutputWidth => Columns.OutputSize;

    /// <summary>Column taps expanded to every (x, channel) position of an NHWC row; cached for the last channel count.</summary>
    internal ExpandedTaps ExpandedColumns(int channels)
    {
        var cached = _expanded;
        if (cached != null && cached.Channels == channels) return cached;
        return _expanded = new ExpandedTaps(Columns, channels);
    }

    private ExpandedTaps? _expanded;

    internal sealed class ExpandedTaps
    {
        public ExpandedTaps(BilinearTaps columns, int channels)
        {
            Channels = channels;
            int n = columns.OutputSize * channels;
            Low = new int[n];
            High = new int[n];
            LowWeight = new float[n];
            HighWeight = new float[n];
            for (int x = 0, j = 0; x < columns.OutputSize; x++)
                for (int c = 0; c < channels; c++, j++)
                {
                    Low[j] = columns.Low[x] * channels + c;
                    High[j] = columns.High[x] * channels + c;
                    LowWeight[j] = columns.LowWeight[x];
                    HighWeight[j] = columns.HighWeight[x];
                }
        }

        public int Channels { get; }
        public int[] Low { get; }
        public int[] High { get; }
        public float[] LowWeight { get; }
        public float[] HighWeight { get; }
    }

    public long InputLength(int count, int channels) => (long)count * InputHeight * InputWidth * channels;

    public long OutputLength(int count, int channels) => (long)count * OutputHeight * OutputWidth * channels;

    /// <summary>
    /// Resizes <paramref name="count"/> images. Each input value is converted to float32 and, when
    /// <paramref name="inputDivisor"/> is not 1, divided by it (float32 division) before interpolation;
    /// <paramref name="normalisation"/> is applied to every output value afterwards.
    /// </summary>
    public unsafe void Run<TIn>(ReadOnlySpan<TIn> input, int count, int channels, Span<float> output, float inputDivisor = 1f, PixelNormalisation normalisation = PixelNormalisation.None)
        where TIn : unmanaged, INumberBase<TIn>
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "image count must not be negative");
        if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channel count must be positive");
        long inLength = InputLength(count, channels), outLength = OutputLength(count, channels);
        if (input.Length != inLength)
            throw new ArgumentException($"input holds {input.Length} values, expected {count}×{InputHeight}×{InputWidth}×{channels} = {inLength}", nameof(input));
        if (output.Length != outLength)
            throw new ArgumentException($"output holds {output.Length} values, expected {count}×{OutputHeight}×{OutputWidth}×{channels} = {outLength}", nameof(output));
        if (count == 0) return;

        int blockRows = BlockRows(count);
        int blocks = (OutputHeight + blockRows - 1) / blockRows;
        fixed (TIn* inPtr = input)
        fixed (float* outPtr = output)
        {
            nint inAddress = (nint)inPtr, outAddress = (nint)outPtr;
            var job = new Job<TIn>(this, ExpandedColumns(channels), inAddress, outAddress, channels, blockRows, inputDivisor, normalisation);
            if ((long)count * blocks == 1)
                job.Execute(0, 0);
            else
                Parallel.For(0, count * blocks, item => job.Execute(item / blocks, item % blocks));
        }
    }

    // Whole images per work item when the batch alone keeps every core busy; otherwise row blocks too.
    private int BlockRows(int count)
    {
        int workers = Environment.ProcessorCount;
        if (count >= 2 * workers) return OutputHeight;
        long wanted = 4L * workers;
        long perImage = (wanted + count - 1) / count;
        return (int)Math.Clamp((OutputHeight + perImage - 1) / perImage, 8, OutputHeight);
    }

    private sealed unsafe class Job<TIn>(
        SeparableBilinearResize<TKernel> plan, ExpandedTaps taps, nint input, nint output, int channels, int blockRows, float inputDivisor, PixelNormalisation normalisation)
        where TIn : unmanaged, INumberBase<TIn>
    {
        public void Execute(int image, int block)
        {
            var rows = plan.Rows;
            int outRowLength = plan.OutputWidth * channels;
            int inRowLength = plan.InputWidth * channels;
            int y0 = block * blockRows;
            int y1 = Math.Min(plan.OutputHeight, y0 + blockRows);
            int firstRow = rows.Low[y0];
            int rowSpan = rows.High[y1 - 1] - firstRow + 1;

            var source = (TIn*)input + (long)image * plan.InputHeight * inRowLength;
            var destination = (float*)output + ((long)image * plan.OutputHeight + y0) * outRowLength;

            float[] cache = ArrayPool<float>.Shared.Rent(rowSpan * outRowLength);
            float[] converted = ArrayPool<float>.Shared.Rent(inRowLength);
            bool[] done = ArrayPool<bool>.Shared.Rent(rowSpan);
            try
            {
                Array.Clear(done, 0, rowSpan);
                for (int y = y0; y < y1; y++)
                {
                    var top = Horizontal(rows.Low[y]);
                    var bottom = Horizontal(rows.High[y]);
                    var dst = new Span<float>(destination + (long)(y - y0) * outRowLength, outRowLength);
                    TKernel.Vertical(top, bottom, rows.LowWeight[y], rows.HighWeight[y], dst);
                    normalisation.Apply(dst);
                }
            }
            finally
            {
                ArrayPool<bool>.Shared.Return(done);
                ArrayPool<float>.Shared.Return(converted);
                ArrayPool<float>.Shared.Return(cache);
            }

            ReadOnlySpan<float> Horizontal(int inRow)
            {
                int slot = inRow - firstRow;
                var row = cache.AsSpan(slot * outRowLength, outRowLength);
                if (done[slot]) return row;
                // Each input value is converted (and divided) once; the result is the same for every use.
                TIn* src = source + (long)inRow * inRowLength;
                var values = converted.AsSpan(0, inRowLength);
                if (inputDivisor != 1f)
                    for (int i = 0; i < values.Length; i++) values[i] = float.CreateTruncating(src[i]) / inputDivisor;
                else
                    for (int i = 0; i < values.Length; i++) values[i] = float.CreateTruncating(src[i]);
                int[] low = taps.Low, high = taps.High;
                float[] w0 = taps.LowWeight, w1 = taps.HighWeight;
                for (int j = 0; j < row.Length; j++)
                    row[j] = TKernel.Horizontal(values[low[j]], values[high[j]], w0[j], w1[j]);
                done[slot] = true;
                return row;
            }
        }
    }
}
