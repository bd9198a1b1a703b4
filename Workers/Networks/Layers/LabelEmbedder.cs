using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// DiT's LabelEmbedder at inference: a row lookup in <c>{name}.embedding_table.weight</c> (num_classes + 1, D) when the
/// model was trained with label dropout; row num_classes is the null class classifier-free guidance feeds. Labels are
/// never dropped here (eval mode).
/// </summary>
public sealed class LabelEmbedder
{
    private readonly IBackend _backend;
    private readonly float[] _table; // (Rows, D), host copy: a lookup of B rows needs no kernel

    public LabelEmbedder(StateDictReader w, IBackend backend, string name, int rows, int hiddenSize)
    {
        _backend = backend;
        Rows = rows;
        HiddenSize = hiddenSize;
        _table = w.Read(name + ".embedding_table.weight", rows, hiddenSize);
    }

    public int Rows { get; }

    public int HiddenSize { get; }

    // y: (B) host labels in [0, Rows) → (B, D)
    public Tensor Forward(ReadOnlySpan<long> y)
    {
        var rows = new float[y.Length * HiddenSize];
        for (int n = 0; n < y.Length; n++)
        {
            if (y[n] < 0 || y[n] >= Rows)
                throw new ArgumentOutOfRangeException(nameof(y), $"label {y[n]} at index {n} is outside the embedding table's {Rows} rows");
            _table.AsSpan((int)y[n] * HiddenSize, HiddenSize).CopyTo(rows.AsSpan(n * HiddenSize));
        }
        return _backend.FromHost(rows, y.Length, HiddenSize);
    }
}
