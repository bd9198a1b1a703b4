using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// BEiT's RelativePositionBias as FlexDiT uses it ('relat'): a learned table ((2G − 1)² + 3, heads) indexed by the
/// relative offset of two tokens of the G×G grid; the bias of query i and key j in head h is
/// table[index[i, j], h]. For tokens i = (r₁, c₁), j = (r₂, c₂) (row-major), index = (r₁ − r₂ + G − 1)·(2G − 1) +
/// (c₁ − c₂ + G − 1); the three extra rows (BEiT's class-token entries) are never read. Keys
/// <c>{name}.relative_position_bias_table</c> and the persistent buffer <c>{name}.relative_position_index</c> (int64,
/// used as stored; computed when a file lacks it).
/// </summary>
public sealed class RelativePositionBias : IDisposable
{
    public RelativePositionBias(StateDictReader w, IBackend backend, string name, int gridSize, int heads)
    {
        int t = gridSize * gridSize, rows = TableRows(gridSize);
        var table = w.Read(name + ".relative_position_bias_table", rows, heads);
        string indexKey = name + ".relative_position_index";
        var index = w.Contains(indexKey) ? w.ReadInt64(indexKey, t, t) : ComputeIndex(gridSize);
        var values = new float[heads * t * t];
        for (int ij = 0; ij < t * t; ij++)
        {
            long row = index[ij];
            if (row < 0 || row >= rows)
                throw new TensorFileException(w.Source, $"state dict key '{indexKey}' holds {row} at [{ij / t}, {ij % t}], outside the table's {rows} rows");
            for (int h = 0; h < heads; h++) values[(long)h * t * t + ij] = table[row * heads + h];
        }
        Bias = backend.FromHost(values, heads, t, t);
    }

    /// <summary>(heads, T, T), added to the attention scores.</summary>
    public Tensor Bias { get; }

    public static int TableRows(int gridSize) => (2 * gridSize - 1) * (2 * gridSize - 1) + 3;

    /// <summary>The (T, T) index BEiT's constructor builds for a G×G window, row-major.</summary>
    public static long[] ComputeIndex(int gridSize)
    {
        int g = gridSize, t = g * g;
        var index = new long[t * t];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++)
                index[i * t + j] = (long)(i / g - j / g + g - 1) * (2 * g - 1) + (i % g - j % g + g - 1);
        return index;
    }

    public void Dispose() => Bias.Dispose();
}
