using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// timm's PatchEmbed as DiT uses it: Conv2d(C, D, kernel p, stride p) then flatten to tokens (row-major over the patch
/// grid); no norm. Computed as Patchify + one GEMM, the conv weight (D, C, p, p) read as a (D, C·p·p) matrix.
/// Keys <c>{name}.proj.weight</c>, <c>{name}.proj.bias</c>.
/// </summary>
public sealed class PatchEmbed : IDisposable
{
    private readonly IBackend _backend;

    public PatchEmbed(StateDictReader w, IBackend backend, string name, int inChannels, int hiddenSize, int patchSize)
    {
        _backend = backend;
        InChannels = inChannels;
        PatchSize = patchSize;
        int f = inChannels * patchSize * patchSize;
        var weight = w.Read(name + ".proj.weight", hiddenSize, inChannels, patchSize, patchSize);
        proj = new Linear(backend, weight, w.Read(name + ".proj.bias", hiddenSize), f, hiddenSize);
    }

    public int InChannels { get; }

    public int PatchSize { get; }

    public Linear proj { get; }

    // x: (B, C, H, W) → tokens: (B, (H/p)·(W/p), D)
    public Tensor Forward(Tensor x, MacCounter? macs)
    {
        if (x.Rank != 4 || x.Dim(1) != InChannels) throw new ArgumentException($"PatchEmbed expects (B, {InChannels}, H, W), got {x}");
        int p = PatchSize, t = x.Dim(2) / p * (x.Dim(3) / p);
        using var patches = _backend.Empty(x.Dim(0), t, InChannels * p * p);
        _backend.Patchify(x, p, patches);
        return proj.Forward(patches, macs);
    }

    public void Dispose() => proj.Dispose();
}
