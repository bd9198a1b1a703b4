using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// FlexDiT's RecoveryBlock: brings the semantic tokens x (an n×n grid) back to the full G×G grid.
/// merged = merged_layer1(nearest-upsample(x)) + merged_layer2(y) with y the full-resolution tokens that entered the
/// dumbbell; then merged ← merged + gate₁ · CrossAttn(modulate(LN(merged)), modulate(LN(x))) (queries from the full
/// grid, keys/values from the semantic tokens) and the gated MLP. Nearest up-sampling copies whole tokens, so
/// merged_layer1 is applied before it (n² rows instead of G²; the same per-token products).
/// Keys <c>{name}.attn.{q,kv,proj}.*</c>, <c>{name}.mlp.*</c>, <c>{name}.adaLN_modulation.1.*</c>,
/// <c>{name}.merged_layer1.*</c>, <c>{name}.merged_layer2.*</c>.
/// </summary>
public sealed class RecoveryBlock : IDisposable
{
    private readonly IBackend _backend;

    public RecoveryBlock(StateDictReader w, IBackend backend, string name, int hiddenSize, int gridSize, int heads, int mlpHidden)
    {
        _backend = backend;
        GridSize = gridSize;
        attn = new CrossAttention(w, backend, name + ".attn", hiddenSize, heads);
        mlp = new Mlp(w, backend, name + ".mlp", hiddenSize, mlpHidden);
        adaLN_modulation = new AdaLnModulation(w, backend, name + ".adaLN_modulation", hiddenSize, chunks: 6);
        merged_layer1 = Linear.Load(w, backend, name + ".merged_layer1", hiddenSize, hiddenSize);
        merged_layer2 = Linear.Load(w, backend, name + ".merged_layer2", hiddenSize, hiddenSize);
    }

    /// <summary>Side G of the full token grid (the official <c>input_size</c> argument, input_size // patch_size of the model).</summary>
    public int GridSize { get; }

    public CrossAttention attn { get; }

    public Mlp mlp { get; }

    public AdaLnModulation adaLN_modulation { get; }

    public Linear merged_layer1 { get; }

    public Linear merged_layer2 { get; }

    // x: (B, n², D) semantic tokens, y: (B, G², D) full-resolution tokens, c: (B, D) → new (B, G², D)
    public Tensor Forward(Tensor x, Tensor y, Tensor c, MacCounter? macs)
    {
        int b = x.Dim(0), n = x.Dim(1), d = x.Dim(2), g = GridSize;
        int side = (int)Math.Round(Math.Sqrt(n));
        if (side * side != n) throw new ArgumentException($"RecoveryBlock: {n} tokens do not form a square grid");
        if (y.Rank != 3 || y.Dim(0) != b || y.Dim(1) != g * g || y.Dim(2) != d)
            throw new ArgumentException($"RecoveryBlock: full-resolution tokens must be ({b}, {g * g}, {d}), got {y}");

        var merged = _backend.Empty(b, g * g, d);
        try
        {
            using (var small = merged_layer1.Forward(x, macs))          // (B, n², D)
            using (var smallGrid = small.Reshape(b, side, side, d))
            using (var fullGrid = merged.Reshape(b, g, g, d))
                _backend.UpsampleNearest(smallGrid, fullGrid);
            using (var fromFull = merged_layer2.Forward(y, macs))
                _backend.Add(merged, fromFull, merged);

            var m = adaLN_modulation.Forward(c, macs);
            try
            {
                Tensor shift_msa = m[0], scale_msa = m[1], gate_msa = m[2], shift_mlp = m[3], scale_mlp = m[4], gate_mlp = m[5];
                using (var hq = AdaLnNorm.NormModulate(_backend, merged, shift_msa, scale_msa))
                using (var hkv = AdaLnNorm.NormModulate(_backend, x, shift_msa, scale_msa))
                using (var a = attn.Forward(hq, hkv, macs))
                    _backend.GatedAdd(merged, gate_msa, a, merged);
                AdaLnNorm.MlpResidual(_backend, mlp, merged, shift_mlp, scale_mlp, gate_mlp, macs);
            }
            finally
            {
                foreach (var t in m) t.Dispose();
            }
            return merged;
        }
        catch
        {
            merged.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        attn.Dispose();
        mlp.Dispose();
        adaLN_modulation.Dispose();
        merged_layer1.Dispose();
        merged_layer2.Dispose();
    }
}
