using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// The fixed 2-D sin-cos positional table of MAE/DiT, computed in float64 and rounded to float32 as the official numpy
/// code does. For token m = i·G + j (row i, column j of a G×G patch grid) and F = D/4, ω_k = 1 / 10000^(k/F):
/// pe[m, k] = sin(j·ω_k), pe[m, F + k] = cos(j·ω_k), pe[m, 2F + k] = sin(i·ω_k), pe[m, 3F + k] = cos(i·ω_k)
/// (the first half encodes the column).
/// </summary>
public static class SinCosPositionalEmbedding
{
    // → (G·G, D), C order
    public static float[] Build(int hiddenSize, int gridSize)
    {
        if (hiddenSize % 4 != 0) throw new ArgumentException($"the 2-D sin-cos table needs a hidden size divisible by 4, got {hiddenSize}");
        int d = hiddenSize, f = d / 4;
        var omega = new double[f];
        for (int k = 0; k < f; k++) omega[k] = 1.0 / Math.Pow(10000.0, k / (double)f);
        var table = new float[gridSize * gridSize * d];
        for (int i = 0; i < gridSize; i++)
            for (int j = 0; j < gridSize; j++)
            {
                var row = table.AsSpan((i * gridSize + j) * d, d);
                for (int k = 0; k < f; k++)
                {
                    row[k] = (float)Math.Sin(j * omega[k]);
                    row[f + k] = (float)Math.Cos(j * omega[k]);
                    row[2 * f + k] = (float)Math.Sin(i * omega[k]);
                    row[3 * f + k] = (float)Math.Cos(i * omega[k]);
                }
            }
        return table;
    }

    /// <summary>
    /// The model's <c>pos_embed</c> (1, G·G, D): a non-trainable parameter, so checkpoints carry it and it is read from
    /// the file; only a file that lacks it gets the computed table.
    /// </summary>
    public static float[] LoadOrBuild(StateDictReader w, int hiddenSize, int gridSize)
        => w.Contains("pos_embed") ? w.Read("pos_embed", 1, gridSize * gridSize, hiddenSize) : Build(hiddenSize, gridSize);

    // tokens (B, T, D) += posEmbed (1, T, D), every sample
    public static void AddTo(IBackend backend, Tensor tokens, Tensor posEmbed)
    {
        using var flat = tokens.Reshape(tokens.Dim(0), -1);
        using var pos = posEmbed.Reshape(-1);
        backend.BiasActivation(flat, pos, relu: false, flat);
    }
}
