namespace DyDiT.Eval.Workers.Diffusion;

/// <summary>
/// One sampler step of DiT's Gaussian diffusion (learned-range variance, epsilon prediction, no clipping of
/// x0) as pure float32 functions over NCHW batches. Every float64 coefficient is rounded to float32 first and
/// each operation rounds as the PyTorch expression does (one tensor op at a time, no fused multiply-add).
/// All arrays are <c>[B, C, H·W]</c> flattened, except the model output, <c>[B, 2C, H·W]</c> (ε in the first C
/// channels, the variance interpolation v in the last C).
/// </summary>
public static class SamplingSteps
{
    /// <summary>
    /// <c>p_mean_variance</c> at respaced step <paramref name="t"/>: <c>log σ² = f·log β_t + (1−f)·log σ̃²_t</c>
    /// with <c>f = (v+1)/2</c> (unclamped), <c>x0 = √(1/ᾱ_t)·x − √(1/ᾱ_t − 1)·ε</c>, and the posterior mean
    /// <c>coef1_t·x0 + coef2_t·x</c>.
    /// </summary>
    public static void PMeanVariance(DiffusionSchedule schedule, int t, int batch, int channels, ReadOnlySpan<float> x, ReadOnlySpan<float> modelOutput,
        Span<float> mean, Span<float> logVariance, Span<float> predXStart)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        CheckStep(schedule, t);
        int plane = PlaneSize(x.Length, batch, channels, modelOutput.Length);
        CheckLength(mean.Length, x.Length, nameof(mean));
        CheckLength(logVariance.Length, x.Length, nameof(logVariance));
        CheckLength(predXStart.Length, x.Length, nameof(predXStart));

        if (schedule.NumTimesteps < 2)
            throw new ArgumentException("a one-step chain has no clipped posterior log-variance (DiT's sampler fails on it too)", nameof(schedule));
        float minLog = (float)schedule.PosteriorLogVarianceClipped[t];
        float maxLog = (float)schedule.LogBetas[t];
        float recip = (float)schedule.SqrtRecipAlphasCumprod[t];
        float recipm1 = (float)schedule.SqrtRecipm1AlphasCumprod[t];
        float coef1 = (float)schedule.PosteriorMeanCoef1[t];
        float coef2 = (float)schedule.PosteriorMeanCoef2[t];
        int perSample = channels * plane;
        for (int b = 0; b < batch; b++)
        {
            var xs = x.Slice(b * perSample, perSample);
            var eps = modelOutput.Slice(b * 2 * perSample, perSample);
            var v = modelOutput.Slice(b * 2 * perSample + perSample, perSample);
            var m = mean.Slice(b * perSample, perSample);
            var lv = logVariance.Slice(b * perSample, perSample);
            var x0 = predXStart.Slice(b * perSample, perSample);
            for (int i = 0; i < perSample; i++)
            {
                float frac = (v[i] + 1f) / 2f;
                float a = frac * maxLog;
                float c = (1f - frac) * minLog;
                lv[i] = a + c;
                float start = recip * xs[i] - recipm1 * eps[i];
                x0[i] = start;
                m[i] = coef1 * start + coef2 * xs[i];
            }
        }
    }

    /// <summary>
    /// <c>p_sample</c>'s update: <c>mean + exp(½·log σ²)·noise</c>, and just <c>mean</c> at t = 0 (the noise
    /// is still drawn there by the caller; it is masked out).
    /// </summary>
    public static void PSample(int t, ReadOnlySpan<float> mean, ReadOnlySpan<float> logVariance, ReadOnlySpan<float> noise, Span<float> sample)
    {
        if (t < 0) throw new ArgumentOutOfRangeException(nameof(t));
        CheckLength(logVariance.Length, mean.Length, nameof(logVariance));
        CheckLength(noise.Length, mean.Length, nameof(noise));
        CheckLength(sample.Length, mean.Length, nameof(sample));
        float mask = t != 0 ? 1f : 0f;
        for (int i = 0; i < mean.Length; i++)
        {
            float scale = mask * MathF.Exp(0.5f * logVariance[i]);
            sample[i] = mean[i] + scale * noise[i];
        }
    }

    /// <summary>
    /// <c>ddim_sample</c>'s update from x and the predicted x0: <c>ε = (√(1/ᾱ)·x − x0)/√(1/ᾱ − 1)</c>,
    /// <c>σ = η·√((1−ᾱ_prev)/(1−ᾱ))·√(1 − ᾱ/ᾱ_prev)</c>, <c>x_prev = x0·√ᾱ_prev + √(1 − ᾱ_prev − σ²)·ε</c>
    /// plus <c>σ·noise</c> when t ≠ 0. All in float32 from float32-rounded ᾱ, as the PyTorch code does.
    /// </summary>
    public static void DdimStep(DiffusionSchedule schedule, int t, double eta, ReadOnlySpan<float> x, ReadOnlySpan<float> predXStart,
        ReadOnlySpan<float> noise, Span<float> sample)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        CheckStep(schedule, t);
        CheckLength(predXStart.Length, x.Length, nameof(predXStart));
        CheckLength(noise.Length, x.Length, nameof(noise));
        CheckLength(sample.Length, x.Length, nameof(sample));
        float recip = (float)schedule.SqrtRecipAlphasCumprod[t];
        float recipm1 = (float)schedule.SqrtRecipm1AlphasCumprod[t];
        float alphaBar = (float)schedule.AlphasCumprod[t];
        float alphaBarPrev = (float)schedule.AlphasCumprodPrev[t];
        float etaF = (float)eta;
        float sigma = etaF * MathF.Sqrt((1f - alphaBarPrev) / (1f - alphaBar)) * MathF.Sqrt(1f - alphaBar / alphaBarPrev);
        float sqrtPrev = MathF.Sqrt(alphaBarPrev);
        float dirScale = MathF.Sqrt(1f - alphaBarPrev - sigma * sigma);
        float mask = t != 0 ? 1f : 0f;
        float noiseScale = mask * sigma;
        for (int i = 0; i < x.Length; i++)
        {
            float eps = (recip * x[i] - predXStart[i]) / recipm1;
            float meanPred = predXStart[i] * sqrtPrev + dirScale * eps;
            sample[i] = meanPred + noiseScale * noise[i];
        }
    }

    private static int PlaneSize(int xLength, int batch, int channels, int outLength)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "must be > 0");
        if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be > 0");
        if (xLength == 0 || xLength % (batch * channels) != 0)
            throw new ArgumentException($"x holds {xLength} values, not {batch} samples of {channels} equal channels");
        if (outLength != 2 * xLength)
            throw new ArgumentException($"model output holds {outLength} values; learned-range variance needs [B, 2C, H, W] = {2 * xLength}");
        return xLength / (batch * channels);
    }

    private static void CheckStep(DiffusionSchedule schedule, int t)
    {
        if (t < 0 || t >= schedule.NumTimesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"respaced step must be in [0, {schedule.NumTimesteps})");
    }

    private static void CheckLength(int actual, int expected, string name)
    {
        if (actual != expected) throw new ArgumentException($"{name} holds {actual} values, expected {expected}", name);
    }
}
