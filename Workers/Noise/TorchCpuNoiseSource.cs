namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// The draws of the official scripts run on CPU: one <see cref="TorchCpuGenerator"/> stream shared by the
/// whole batch, in the scripts' order — <c>z = randn(B,C,H,W)</c>, optionally <c>y = randint(0, K, (B,))</c>
/// (sample_ddp.py), then one <c>randn_like</c> of the loop's batch per step (2B rows with guidance).
/// Values depend on the batch composition and on call order; the sample indices are only counted.
/// </summary>
public sealed class TorchCpuNoiseSource : INoiseSource
{
    private int _nextStep;

    public TorchCpuNoiseSource(ulong seed, TorchCpuKernel kernel = TorchCpuKernel.Avx2)
        => Generator = new TorchCpuGenerator(seed, kernel);

    /// <summary>The underlying generator (for draws the sampler makes outside this interface).</summary>
    public TorchCpuGenerator Generator { get; }

    public void InitialLatents(ReadOnlySpan<long> samples, Span<float> destination)
    {
        NoiseShapes.RowSize(destination.Length, samples.Length, "initial latents");
        Generator.Randn(destination);
        _nextStep = 0;
    }

    public void Labels(ReadOnlySpan<long> samples, int numClasses, Span<long> destination)
    {
        if (destination.Length != samples.Length)
            throw new ArgumentException($"labels: destination holds {destination.Length} values for {samples.Length} samples");
        Generator.Randint(0, numClasses, destination);
    }

    public void StepNoise(ReadOnlySpan<long> samples, int step, bool guidanceBatch, Span<float> destination)
    {
        NoiseShapes.RowSize(destination.Length, guidanceBatch ? 2 * samples.Length : samples.Length, "step noise");
        if (step != _nextStep)
            throw new InvalidOperationException($"torch-cpu noise is one sequential stream: step {_nextStep} is due, step {step} was asked for");
        Generator.Randn(destination);
        _nextStep++;
    }
}
