using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Ops not yet written as ILGPU kernels. Each moves to its kernel family's file when written; this file goes when empty.
public sealed partial class CudaBackend
{
    private static NotImplementedException Pending(string op) => new($"{op} has no ILGPU kernel yet");

    public void Add(Tensor x, Tensor y, Tensor destination) => throw Pending(nameof(Add));
    public void Multiply(Tensor x, Tensor y, Tensor destination) => throw Pending(nameof(Multiply));
    public void ScaleShift(Tensor x, float scale, float shift, Tensor destination) => throw Pending(nameof(ScaleShift));
    public void Silu(Tensor x, Tensor destination) => throw Pending(nameof(Silu));
    public void GeluTanh(Tensor x, Tensor destination) => throw Pending(nameof(GeluTanh));
    public void SoftmaxLastDim(Tensor x, Tensor destination) => throw Pending(nameof(SoftmaxLastDim));
    public void LayerNorm(Tensor x, float eps, Tensor destination) => throw Pending(nameof(LayerNorm));
    public void Modulate(Tensor x, Tensor shift, Tensor scale, Tensor destination) => throw Pending(nameof(Modulate));
    public void GatedAdd(Tensor x, Tensor gate, Tensor residual, Tensor destination) => throw Pending(nameof(GatedAdd));
    public void MultiHeadAttention(Tensor qkv, int heads, Tensor destination) => throw Pending(nameof(MultiHeadAttention));
    public void Patchify(Tensor x, int patch, Tensor destination) => throw Pending(nameof(Patchify));
    public void Unpatchify(Tensor x, int patch, Tensor destination) => throw Pending(nameof(Unpatchify));
    public void ClassifierFreeGuidance(Tensor x, int guidedChannels, float scale, Tensor destination) => throw Pending(nameof(ClassifierFreeGuidance));
    public void ScaledDotProductAttention(Tensor q, int queryChannelOffset, Tensor kv, int keyChannelOffset, int valueChannelOffset, int heads, Tensor? bias, Tensor destination) => throw Pending(nameof(ScaledDotProductAttention));
    public void AdaptiveAvgPool2d(Tensor x, Tensor destination) => throw Pending(nameof(AdaptiveAvgPool2d));
    public void UpsampleNearest(Tensor x, Tensor destination) => throw Pending(nameof(UpsampleNearest));
    public void GatedAddBroadcast(Tensor x, Tensor gate, Tensor residual, Tensor destination) => throw Pending(nameof(GatedAddBroadcast));
    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination) => throw Pending(nameof(GatherRows));
    public void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination) => throw Pending(nameof(ScatterRows));
    public void LinearRowBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination) => throw Pending(nameof(LinearRowBlocks));
    public void LinearColumnBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination) => throw Pending(nameof(LinearColumnBlocks));
}
