using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// DiT's final layer: (shift, scale) = adaLN(c); y = Linear(modulate(LN(x), shift, scale)) with p·p·C_out outputs per
/// token. Keys <c>final_layer.linear.*</c>, <c>final_layer.adaLN_modulation.1.*</c>.
/// </summary>
public sealed class FinalLayer : IDisposable
{
    private readonly IBackend _backend;

    public FinalLayer(StateDictReader w, IBackend backend, string name, int hiddenSize, int patchSize, int outChannels)
    {
        _backend = backend;
        linear = Linear.Load(w, backend, name + ".linear", hiddenSize, patchSize * patchSize * outChannels);
        adaLN_modulation = new AdaLnModulation(w, backend, name + ".adaLN_modulation", hiddenSize, chunks: 2);
    }

    public Linear linear { get; }

    public AdaLnModulation adaLN_modulation { get; }

    // x: (B, T, D), c: (B, D) → (B, T, p·p·C_out)
    public Tensor Forward(Tensor x, Tensor c, MacCounter? macs)
    {
        var m = adaLN_modulation.Forward(c, macs);
        try
        {
            Tensor shift = m[0], scale = m[1]; // shift first here
            using var h = AdaLnNorm.NormModulate(_backend, x, shift, scale);
            return linear.Forward(h, macs);
        }
        finally
        {
            foreach (var t in m) t.Dispose();
        }
    }

    public void Dispose()
    {
        linear.Dispose();
        adaLN_modulation.Dispose();
    }
}
