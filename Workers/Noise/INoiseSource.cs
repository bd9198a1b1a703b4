namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// Where a sampler's random numbers come from: initial latents x_T, class labels and the normals drawn at
/// every sampler step. Each call names the run's sample indices it serves (row r of a batch is sample
/// <c>samples[r]</c>); a source may or may not make values depend on the batch (see the implementations).
/// </summary>
public interface INoiseSource
{
    /// <summary>
    /// Standard normals for x_T: <paramref name="destination"/> holds <c>samples.Length</c> rows of equal size
    /// (C·H·W values each), row r for <c>samples[r]</c>.
    /// </summary>
    void InitialLatents(ReadOnlySpan<long> samples, Span<float> destination);

    /// <summary>Class labels uniform in [0, <paramref name="numClasses"/>), one per sample.</summary>
    void Labels(ReadOnlySpan<long> samples, int numClasses, Span<long> destination);

    /// <summary>
    /// The normals of sampler step <paramref name="step"/> (0 = the first step taken, i.e. the one at the
    /// largest timestep; every step draws, the last one included). <paramref name="destination"/> holds
    /// <c>samples.Length</c> rows, or with <paramref name="guidanceBatch"/> the classifier-free-guidance batch
    /// of <c>2·samples.Length</c> rows where row <c>B + r</c> is the null-label copy of <c>samples[r]</c>.
    /// </summary>
    void StepNoise(ReadOnlySpan<long> samples, int step, bool guidanceBatch, Span<float> destination);
}

internal static class NoiseShapes
{
    /// <summary>Values per row, checking that <paramref name="length"/> splits into <paramref name="rows"/> equal rows.</summary>
    public static int RowSize(int length, int rows, string what)
    {
        if (rows <= 0) throw new ArgumentException($"{what}: no samples requested");
        if (length % rows != 0 || length == 0)
            throw new ArgumentException($"{what}: destination of {length} values does not split into {rows} equal rows");
        return length / rows;
    }
}
