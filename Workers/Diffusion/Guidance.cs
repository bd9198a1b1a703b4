namespace DyDiT.Eval.Workers.Diffusion;

/// <summary>
/// The host half of DiT's <c>forward_with_cfg</c>: the network has been run on <c>[x_cond; x_cond]</c> with
/// labels <c>[y; null]</c>, giving <c>[2B, 2C, H, W]</c>. Guidance mixes only the first
/// <paramref name="guidedChannels"/> output channels (3 in DiT — not all 4 of ε):
/// <c>uncond + s·(cond − uncond)</c>, written to both halves; the remaining channels pass through unchanged.
/// </summary>
public static class Guidance
{
    public const int DitGuidedChannels = 3;

    public static void Mix(ReadOnlySpan<float> rawOutput, int batch, int outChannels, float scale, Span<float> destination,
        int guidedChannels = DitGuidedChannels)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "must be > 0 (rows of one half)");
        if (outChannels <= 0 || guidedChannels < 0 || guidedChannels > outChannels)
            throw new ArgumentOutOfRangeException(nameof(guidedChannels), guidedChannels, $"must be within the {outChannels} output channels");
        if (rawOutput.Length == 0 || rawOutput.Length % (2 * batch * outChannels) != 0)
            throw new ArgumentException($"raw output holds {rawOutput.Length} values, not [{2 * batch}, {outChannels}, H, W]");
        if (destination.Length != rawOutput.Length)
            throw new ArgumentException($"destination holds {destination.Length} values, expected {rawOutput.Length}");
        int plane = rawOutput.Length / (2 * batch * outChannels);
        int row = outChannels * plane;
        int guided = guidedChannels * plane;
        rawOutput.CopyTo(destination);
        for (int b = 0; b < batch; b++)
        {
            var cond = rawOutput.Slice(b * row, guided);
            var uncond = rawOutput.Slice((batch + b) * row, guided);
            var first = destination.Slice(b * row, guided);
            var second = destination.Slice((batch + b) * row, guided);
            for (int i = 0; i < guided; i++)
            {
                float mixed = uncond[i] + scale * (cond[i] - uncond[i]);
                first[i] = mixed;
                second[i] = mixed;
            }
        }
    }
}
