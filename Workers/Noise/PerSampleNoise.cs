namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// Noise that is a pure function of (run seed, sample index, stream, step): Philox4x32-10 keyed by the seed,
/// counter = (block, step, sample low 32 bits, stream·2²⁴ + sample bits 32..55). Sample i therefore gets
/// the same latent, label and step noise whatever batch it is generated in, on whichever host.
/// </summary>
/// <remarks>
/// Normals: each Philox block gives two 53-bit uniforms u1, u2 and, by Box-Muller in float64,
/// <c>r·cos(2πu2)</c> and <c>r·sin(2πu2)</c> with <c>r = sqrt(−2 ln(1 − u1))</c>, rounded to float32.
/// The log and sin/cos are our own IEEE-only routines, so the bits do not depend on the C library.
/// Labels: unbiased by rejection on 64-bit words.
/// </remarks>
public sealed class PerSampleNoise : INoiseSource
{
    /// <summary>The independent streams of one sample.</summary>
    public enum Stream : uint
    {
        InitialLatent = 0,
        Label = 1,
        /// <summary>Step noise of the sample's own (conditional) row.</summary>
        Step = 2,
        /// <summary>Step noise of the sample's null-label copy in a guidance batch.</summary>
        StepGuidanceCopy = 3,
    }

    private const double Inv53 = 1.0 / (1UL << 53);

    private readonly uint _k0;
    private readonly uint _k1;

    public PerSampleNoise(ulong seed)
    {
        Seed = seed;
        _k0 = (uint)seed;
        _k1 = (uint)(seed >> 32);
    }

    public ulong Seed { get; }

    /// <summary>Fills <paramref name="destination"/> with the first normals of one (sample, stream, step).</summary>
    public void Normals(long sample, Stream stream, int step, Span<float> destination)
    {
        CheckSample(sample);
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "must be >= 0");
        if ((ulong)destination.Length > 2UL * uint.MaxValue) throw new ArgumentException("too many values for one stream");
        uint c1 = (uint)step, c2 = (uint)sample, c3 = ((uint)stream << 24) | (uint)(sample >> 32);
        for (int i = 0; i < destination.Length; i += 2)
        {
            uint w0 = (uint)(i >> 1), w1 = c1, w2 = c2, w3 = c3;
            Philox4x32.Block(ref w0, ref w1, ref w2, ref w3, _k0, _k1);
            double u1 = ((((ulong)w0 << 32) | w1) >> 11) * Inv53;
            double u2 = ((((ulong)w2 << 32) | w3) >> 11) * Inv53;
            double r = Math.Sqrt(-2.0 * DeterministicMath.Log(1.0 - u1));
            DeterministicMath.SinCos2Pi(u2, out double sin, out double cos);
            destination[i] = (float)(r * cos);
            if (i + 1 < destination.Length) destination[i + 1] = (float)(r * sin);
        }
    }

    /// <summary>The label of one sample, uniform in [0, numClasses).</summary>
    public long Label(long sample, int numClasses)
    {
        CheckSample(sample);
        if (numClasses <= 0) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "must be > 0");
        ulong n = (ulong)numClasses;
        ulong limit = ulong.MaxValue - (ulong.MaxValue % n + 1) % n; // largest multiple of n, minus 1
        uint c2 = (uint)sample, c3 = ((uint)Stream.Label << 24) | (uint)(sample >> 32);
        for (uint block = 0; ; block++)
        {
            uint w0 = block, w1 = 0, w2 = c2, w3 = c3;
            Philox4x32.Block(ref w0, ref w1, ref w2, ref w3, _k0, _k1);
            ulong a = ((ulong)w0 << 32) | w1;
            if (a <= limit) return (long)(a % n);
            ulong b = ((ulong)w2 << 32) | w3;
            if (b <= limit) return (long)(b % n);
        }
    }

    public void InitialLatents(ReadOnlySpan<long> samples, Span<float> destination)
    {
        int row = NoiseShapes.RowSize(destination.Length, samples.Length, "initial latents");
        for (int r = 0; r < samples.Length; r++)
            Normals(samples[r], Stream.InitialLatent, 0, destination.Slice(r * row, row));
    }

    public void Labels(ReadOnlySpan<long> samples, int numClasses, Span<long> destination)
    {
        if (destination.Length != samples.Length)
            throw new ArgumentException($"labels: destination holds {destination.Length} values for {samples.Length} samples");
        for (int r = 0; r < samples.Length; r++)
            destination[r] = Label(samples[r], numClasses);
    }

    public void StepNoise(ReadOnlySpan<long> samples, int step, bool guidanceBatch, Span<float> destination)
    {
        int batch = samples.Length;
        int row = NoiseShapes.RowSize(destination.Length, guidanceBatch ? 2 * batch : batch, "step noise");
        for (int r = 0; r < batch; r++)
        {
            Normals(samples[r], Stream.Step, step, destination.Slice(r * row, row));
            if (guidanceBatch)
                Normals(samples[r], Stream.StepGuidanceCopy, step, destination.Slice((batch + r) * row, row));
        }
    }

    private static void CheckSample(long sample)
    {
        if (sample < 0 || sample >= 1L << 56) throw new ArgumentOutOfRangeException(nameof(sample), sample, "sample index must be in [0, 2^56)");
    }
}
