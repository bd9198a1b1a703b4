using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Ops not yet written as ILGPU kernels. Each moves to its kernel family's file when written; this file goes when empty.
public sealed partial class CudaBackend
{
    private static NotImplementedException Pending(string op) => new($"{op} has no ILGPU kernel yet");

    public Tensor PackConv2dWeight(ReadOnlySpan<float> weightOihw, int outChannels, int inChannels, int kernelH, int kernelW) => throw Pending(nameof(PackConv2dWeight));
    public void Conv2d(Tensor x, Tensor packedWeight, Tensor? bias, Conv2dParams p, Tensor destination, int sourceChannelOffset = 0, int destinationChannelOffset = 0) => throw Pending(nameof(Conv2d));
    public void BiasActivation(Tensor x, Tensor bias, bool relu, Tensor destination) => throw Pending(nameof(BiasActivation));
    public void MaxPool2d(Tensor x, int kernel, int stride, int padding, Tensor destination, int destinationChannelOffset = 0) => throw Pending(nameof(MaxPool2d));
    public void AvgPool2d(Tensor x, int kernel, int stride, int padding, bool countIncludePad, Tensor destination, int destinationChannelOffset = 0) => throw Pending(nameof(AvgPool2d));
    public void GlobalAvgPool(Tensor x, Tensor destination) => throw Pending(nameof(GlobalAvgPool));
    public void CopyChannels(Tensor source, int sourceChannelOffset, int count, Tensor destination, int destinationChannelOffset) => throw Pending(nameof(CopyChannels));
    public void ConcatChannels(IReadOnlyList<Tensor> parts, Tensor destination) => throw Pending(nameof(ConcatChannels));
    public void GroupNorm(Tensor x, int groups, float eps, Tensor? weight, Tensor? bias, Tensor destination) => throw Pending(nameof(GroupNorm));
    public void UpsampleNearest2x(Tensor x, Tensor destination) => throw Pending(nameof(UpsampleNearest2x));
    public void TransposeLastTwo(Tensor x, Tensor destination) => throw Pending(nameof(TransposeLastTwo));
}
