namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// Counts the multiply-accumulates a forward pass executes (one per product term of every linear layer,
/// convolution and attention matmul; norms, activations and element-wise ops are not counted — the
/// convention behind DiT's "118.6 GFLOPs").
/// </summary>
public sealed class MacCounter
{
    public long Total { get; private set; }

    public void Add(long macs) => Total = checked(Total + macs);
}
