using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>
/// A network's output and the multiply-accumulates executed to produce it (whole batch). <see cref="DenseMultiplyAccumulates"/>
/// is what a plain DiT of the same shape would have executed on the same call (null where that comparison does not apply);
/// <see cref="Activity"/> the share of routed work that ran (DyDiT only). Disposing frees the output.
/// </summary>
public sealed record ForwardResult(Tensor Output, long MultiplyAccumulates, long? DenseMultiplyAccumulates = null, RoutingActivity? Activity = null)
    : IDisposable
{
    public void Dispose() => Output.Dispose();
}

/// <summary>
/// Mean shares of DyDiT's routed units that were on in a call: attention heads, MLP channel groups and tokens sent through
/// the MLP (the three means the official <c>forward_with_cfg</c> prints).
/// </summary>
public sealed record RoutingActivity(double Heads, double Groups, double Tokens);
