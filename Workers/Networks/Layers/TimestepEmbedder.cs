using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// DiT's TimestepEmbedder: sinusoidal features of the (original, 0..999) timestep, then Linear(256, D) → SiLU →
/// Linear(D, D). Keys <c>{name}.mlp.0.*</c>, <c>{name}.mlp.2.*</c>.
/// </summary>
public sealed class TimestepEmbedder : IDisposable
{
    public const int FrequencyEmbeddingSize = 256;
    public const int MaxPeriod = 10000;

    private readonly IBackend _backend;

    public TimestepEmbedder(StateDictReader w, IBackend backend, string name, int hiddenSize)
    {
        _backend = backend;
        mlp_0 = Linear.Load(w, backend, name + ".mlp.0", FrequencyEmbeddingSize, hiddenSize);
        mlp_2 = Linear.Load(w, backend, name + ".mlp.2", hiddenSize, hiddenSize);
    }

    public Linear mlp_0 { get; }

    public Linear mlp_2 { get; }

    /// <summary>
    /// Features (B, dim) of timesteps t, computed in float32 the way the official code does:
    /// freqs[k] = exp(−ln(maxPeriod) · k / half), args = float(t) · freqs, features = [cos(args), sin(args)] (cos first),
    /// a zero column appended when dim is odd. The exp is torch's CPU one (<see cref="TorchCpuExp"/>), not a correctly
    /// rounded one: they differ by an ulp for some k, which at t = 999 is visible in cos/sin.
    /// </summary>
    public static float[] FrequencyFeatures(ReadOnlySpan<long> t, int dim = FrequencyEmbeddingSize, int maxPeriod = MaxPeriod)
    {
        int half = dim / 2;
        var freqs = new float[half];
        float negLog = (float)-Math.Log(maxPeriod);
        for (int k = 0; k < half; k++) freqs[k] = TorchCpuExp.Exp(negLog * k / half); // (float32 product) / half, then exp
        var features = new float[t.Length * dim];
        for (int n = 0; n < t.Length; n++)
            for (int k = 0; k < half; k++)
            {
                float arg = (float)t[n] * freqs[k];
                features[n * dim + k] = MathF.Cos(arg);
                features[n * dim + half + k] = MathF.Sin(arg);
            }
        return features;
    }

    // t: (B) host timesteps → (B, D)
    public Tensor Forward(ReadOnlySpan<long> t, MacCounter? macs, Action<string, Tensor>? inspect = null)
    {
        using var freq = _backend.FromHost(FrequencyFeatures(t), t.Length, FrequencyEmbeddingSize);
        inspect?.Invoke("t_freq", freq);
        using var h = mlp_0.Forward(freq, macs);
        _backend.Silu(h, h);
        return mlp_2.Forward(h, macs);
    }

    public void Dispose()
    {
        mlp_0.Dispose();
        mlp_2.Dispose();
    }
}
