using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// adaLN's conditioning head: Sequential(SiLU, Linear(D, k·D)) applied to c, its output chunked into k per-sample
/// vectors (B, D) in row order of the weight. Key <c>{name}.1.*</c> (index 0 is the SiLU).
/// </summary>
public sealed class AdaLnModulation : IDisposable
{
    private readonly IBackend _backend;

    public AdaLnModulation(StateDictReader w, IBackend backend, string name, int hiddenSize, int chunks)
    {
        _backend = backend;
        HiddenSize = hiddenSize;
        Chunks = chunks;
        linear = Linear.Load(w, backend, name + ".1", hiddenSize, chunks * hiddenSize);
    }

    public int HiddenSize { get; }

    public int Chunks { get; }

    public Linear linear { get; }

    // c: (B, D) → k tensors (B, D); the caller disposes them
    public Tensor[] Forward(Tensor c, MacCounter? macs)
    {
        int b = c.Dim(0), d = HiddenSize;
        using var act = _backend.Empty(b, d);
        _backend.Silu(c, act);
        using var all = linear.Forward(act, macs); // (B, k·D)
        var chunks = new Tensor[Chunks];
        for (int i = 0; i < Chunks; i++)
        {
            chunks[i] = _backend.Empty(b, d);
            _backend.CopyChannels(all, i * d, d, chunks[i], 0);
        }
        return chunks;
    }

    public void Dispose() => linear.Dispose();
}
