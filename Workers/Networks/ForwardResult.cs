using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>A network's output and the multiply-accumulates executed to produce it (whole batch). Disposing frees the output.</summary>
public sealed record ForwardResult(Tensor Output, long MultiplyAccumulates) : IDisposable
{
    public void Dispose() => Output.Dispose();
}
