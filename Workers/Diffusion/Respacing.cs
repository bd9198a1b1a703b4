using System.Globalization;

namespace DyDiT.Eval.Workers.Diffusion;

/// <summary>DiT's <c>space_timesteps</c>: which of the original diffusion steps a shortened sampler keeps.</summary>
public static class Respacing
{
    /// <summary>
    /// The kept original timesteps, ascending. <paramref name="sectionCounts"/> is either <c>"ddimN"</c>
    /// (the smallest integer stride whose <c>range(0, T, stride)</c> has N members) or comma-separated
    /// counts, one per equal section of the T steps (the first <c>T % sections</c> sections are one step
    /// longer). Within a section of size S taking K steps the positions are <c>round(cur)</c> with
    /// <c>cur</c> accumulated by repeated float64 addition of <c>(S−1)/(K−1)</c> and Python's
    /// round-half-to-even.
    /// </summary>
    public static int[] SpaceTimesteps(int numTimesteps, string sectionCounts)
    {
        ArgumentNullException.ThrowIfNull(sectionCounts);
        if (numTimesteps <= 0) throw new ArgumentOutOfRangeException(nameof(numTimesteps), numTimesteps, "must be > 0");
        if (sectionCounts.StartsWith("ddim", StringComparison.Ordinal))
        {
            if (!int.TryParse(sectionCounts.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int desired))
                throw new FormatException($"respacing '{sectionCounts}': expected ddim followed by a step count");
            for (int stride = 1; stride < numTimesteps; stride++)
            {
                if ((numTimesteps + stride - 1) / stride == desired)
                    return Enumerable.Range(0, desired).Select(k => k * stride).ToArray();
            }
            throw new ArgumentException($"respacing '{sectionCounts}': no integer stride gives exactly {desired} of {numTimesteps} steps");
        }

        var counts = sectionCounts.Split(',').Select(part =>
            int.TryParse(part.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int c)
                ? c
                : throw new FormatException($"respacing '{sectionCounts}': '{part}' is not a step count")).ToArray();
        int sizePer = numTimesteps / counts.Length;
        int extra = numTimesteps % counts.Length;
        int start = 0;
        var kept = new SortedSet<int>();
        for (int i = 0; i < counts.Length; i++)
        {
            int size = sizePer + (i < extra ? 1 : 0);
            int count = counts[i];
            if (size < count)
                throw new ArgumentException($"respacing '{sectionCounts}': cannot take {count} steps from a section of {size}");
            double fracStride = count <= 1 ? 1.0 : (size - 1) / (double)(count - 1);
            double cur = 0.0;
            for (int k = 0; k < count; k++)
            {
                kept.Add(start + (int)Math.Round(cur, MidpointRounding.ToEven));
                cur += fracStride;
            }
            start += size;
        }
        return kept.ToArray();
    }
}
