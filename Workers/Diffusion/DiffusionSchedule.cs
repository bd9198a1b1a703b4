namespace DyDiT.Eval.Workers.Diffusion;

/// <summary>
/// The float64 coefficient tables of DiT's <c>GaussianDiffusion</c> for one (possibly respaced) chain, computed
/// with NumPy's operation order. Index t is the respaced step (0 … <see cref="NumTimesteps"/>−1);
/// <see cref="TimestepMap"/>[t] is the original timestep the network is given.
/// </summary>
public sealed class DiffusionSchedule
{
    private DiffusionSchedule(double[] betas, int[] timestepMap)
    {
        int n = betas.Length;
        if (n == 0) throw new ArgumentException("a schedule needs at least one step");
        if (timestepMap.Length != n) throw new ArgumentException("timestep map and betas differ in length");
        var alphas = new double[n];
        var alphasCumprod = new double[n];
        var alphasCumprodPrev = new double[n];
        var alphasCumprodNext = new double[n];
        var sqrtAlphasCumprod = new double[n];
        var sqrtOneMinusAlphasCumprod = new double[n];
        var logOneMinusAlphasCumprod = new double[n];
        var sqrtRecipAlphasCumprod = new double[n];
        var sqrtRecipm1AlphasCumprod = new double[n];
        var posteriorVariance = new double[n];
        var posteriorLogVarianceClipped = new double[n];
        var posteriorMeanCoef1 = new double[n];
        var posteriorMeanCoef2 = new double[n];
        var logBetas = new double[n];

        double product = 1.0;
        for (int i = 0; i < n; i++)
        {
            if (!(betas[i] > 0 && betas[i] <= 1)) throw new ArgumentException($"beta[{i}] = {betas[i]} is outside (0, 1]");
            alphas[i] = 1.0 - betas[i];
            product = i == 0 ? alphas[0] : product * alphas[i];
            alphasCumprod[i] = product;
        }
        for (int i = 0; i < n; i++)
        {
            double acp = alphasCumprod[i];
            double prev = i == 0 ? 1.0 : alphasCumprod[i - 1];
            alphasCumprodPrev[i] = prev;
            alphasCumprodNext[i] = i + 1 < n ? alphasCumprod[i + 1] : 0.0;
            sqrtAlphasCumprod[i] = Math.Sqrt(acp);
            sqrtOneMinusAlphasCumprod[i] = Math.Sqrt(1.0 - acp);
            logOneMinusAlphasCumprod[i] = Math.Log(1.0 - acp);
            sqrtRecipAlphasCumprod[i] = Math.Sqrt(1.0 / acp);
            sqrtRecipm1AlphasCumprod[i] = Math.Sqrt(1.0 / acp - 1);
            posteriorVariance[i] = betas[i] * (1.0 - prev) / (1.0 - acp);
            posteriorMeanCoef1[i] = betas[i] * Math.Sqrt(prev) / (1.0 - acp);
            posteriorMeanCoef2[i] = (1.0 - prev) * Math.Sqrt(alphas[i]) / (1.0 - acp);
            logBetas[i] = Math.Log(betas[i]);
        }
        // the posterior variance is 0 at t = 0; its log is clipped by repeating the value at t = 1
        // (GaussianDiffusion leaves the array empty for a one-step chain)
        for (int i = 0; i < n; i++)
            posteriorLogVarianceClipped[i] = n > 1 ? Math.Log(posteriorVariance[i == 0 ? 1 : i]) : double.NaN;
        Betas = betas;
        TimestepMap = timestepMap;
        AlphasCumprod = alphasCumprod;
        AlphasCumprodPrev = alphasCumprodPrev;
        AlphasCumprodNext = alphasCumprodNext;
        SqrtAlphasCumprod = sqrtAlphasCumprod;
        SqrtOneMinusAlphasCumprod = sqrtOneMinusAlphasCumprod;
        LogOneMinusAlphasCumprod = logOneMinusAlphasCumprod;
        SqrtRecipAlphasCumprod = sqrtRecipAlphasCumprod;
        SqrtRecipm1AlphasCumprod = sqrtRecipm1AlphasCumprod;
        PosteriorVariance = posteriorVariance;
        PosteriorLogVarianceClipped = posteriorLogVarianceClipped;
        PosteriorMeanCoef1 = posteriorMeanCoef1;
        PosteriorMeanCoef2 = posteriorMeanCoef2;
        LogBetas = logBetas;
    }

    /// <summary>DiT's linear schedule for T steps: <c>np.linspace(s·1e-4, s·0.02, T)</c> with s = 1000 / T.</summary>
    public static double[] LinearBetas(int numDiffusionTimesteps = 1000)
    {
        if (numDiffusionTimesteps <= 0) throw new ArgumentOutOfRangeException(nameof(numDiffusionTimesteps));
        double scale = 1000.0 / numDiffusionTimesteps;
        return Linspace(scale * 0.0001, scale * 0.02, numDiffusionTimesteps);
    }

    /// <summary>NumPy's <c>linspace</c> (endpoint included): <c>start + i·((stop − start)/(n − 1))</c>, last value exactly stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        if (num == 1)
        {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }

    /// <summary>An un-respaced chain over the given betas (<see cref="TimestepMap"/> is the identity).</summary>
    public static DiffusionSchedule FromBetas(double[] betas)
        => new((double[])betas.Clone(), Enumerable.Range(0, betas.Length).ToArray());

    /// <summary>
    /// <c>SpacedDiffusion</c>: keeps the original steps <paramref name="useTimesteps"/> (ascending, distinct) and
    /// derives the shortened chain's betas <c>1 − ᾱ[i]/ᾱ[previous kept]</c> from the base chain's ᾱ.
    /// </summary>
    public static DiffusionSchedule Respaced(double[] baseBetas, IReadOnlyList<int> useTimesteps)
    {
        var baseSchedule = FromBetas(baseBetas);
        var keep = new HashSet<int>(useTimesteps);
        var betas = new List<double>();
        var map = new List<int>();
        double last = 1.0;
        for (int i = 0; i < baseBetas.Length; i++)
        {
            if (!keep.Contains(i)) continue;
            double acp = baseSchedule.AlphasCumprod[i];
            betas.Add(1 - acp / last);
            last = acp;
            map.Add(i);
        }
        if (map.Count != keep.Count)
            throw new ArgumentException($"respaced timesteps must lie in [0, {baseBetas.Length})");
        return new DiffusionSchedule([.. betas], [.. map]);
    }

    /// <summary>
    /// <c>create_diffusion(respacing)</c> of DiT: linear betas over <paramref name="diffusionSteps"/> steps,
    /// respaced by <see cref="Respacing.SpaceTimesteps"/> (an empty string keeps every step).
    /// </summary>
    public static DiffusionSchedule Create(string respacing, int diffusionSteps = 1000)
    {
        ArgumentNullException.ThrowIfNull(respacing);
        var spec = respacing.Length == 0 ? diffusionSteps.ToString(System.Globalization.CultureInfo.InvariantCulture) : respacing;
        return Respaced(LinearBetas(diffusionSteps), Respacing.SpaceTimesteps(diffusionSteps, spec));
    }

    public int NumTimesteps => Betas.Count;

    /// <summary>Original timestep of each respaced index (what the network is called with).</summary>
    public IReadOnlyList<int> TimestepMap { get; }

    public IReadOnlyList<double> Betas { get; }
    public IReadOnlyList<double> LogBetas { get; }
    public IReadOnlyList<double> AlphasCumprod { get; }
    public IReadOnlyList<double> AlphasCumprodPrev { get; }
    public IReadOnlyList<double> AlphasCumprodNext { get; }
    public IReadOnlyList<double> SqrtAlphasCumprod { get; }
    public IReadOnlyList<double> SqrtOneMinusAlphasCumprod { get; }
    public IReadOnlyList<double> LogOneMinusAlphasCumprod { get; }
    public IReadOnlyList<double> SqrtRecipAlphasCumprod { get; }
    public IReadOnlyList<double> SqrtRecipm1AlphasCumprod { get; }
    public IReadOnlyList<double> PosteriorVariance { get; }
    public IReadOnlyList<double> PosteriorLogVarianceClipped { get; }
    public IReadOnlyList<double> PosteriorMeanCoef1 { get; }
    public IReadOnlyList<double> PosteriorMeanCoef2 { get; }
}
