namespace DyDiT.Eval.Engine.Tensors;

/// <summary>
/// Folds an inference-mode BatchNorm into the convolution in front of it, on host arrays at load time:
/// BN(conv(x)) = conv'(x) + b' with, per output channel c, s = γ[c] / √(var[c] + eps),
/// w'[c, …] = w[c, …] · s and b'[c] = β[c] − mean[c] · s. Everything is computed in float64 and rounded once.
/// </summary>
public static class BatchNormFolding
{
    /// <param name="weight">Convolution weight (Cout, …) without bias, C order.</param>
    /// <param name="outChannels">Cout; every BN vector has this length.</param>
    /// <returns>The scaled weight (same layout as <paramref name="weight"/>) and the bias (Cout).</returns>
    public static (float[] Weight, float[] Bias) FoldIntoConv(ReadOnlySpan<float> weight, int outChannels,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, ReadOnlySpan<float> runningMean, ReadOnlySpan<float> runningVar, double eps)
    {
        if (outChannels <= 0 || weight.Length % outChannels != 0)
            throw new ArgumentException($"a weight of {weight.Length} values does not split into {outChannels} output channels");
        foreach (var (name, length) in new[] { ("gamma", gamma.Length), ("beta", beta.Length), ("running_mean", runningMean.Length), ("running_var", runningVar.Length) })
            if (length != outChannels) throw new ArgumentException($"BatchNorm {name} has {length} values, expected {outChannels}");
        int perChannel = weight.Length / outChannels;
        var w = new float[weight.Length];
        var b = new float[outChannels];
        for (int c = 0; c < outChannels; c++)
        {
            double s = gamma[c] / Math.Sqrt((double)runningVar[c] + eps);
            for (int i = c * perChannel; i < (c + 1) * perChannel; i++) w[i] = (float)(weight[i] * s);
            b[c] = (float)(beta[c] - runningMean[c] * s);
        }
        return (w, b);
    }
}
