using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Copies between channel windows of channels-last tensors with the same leading dimensions.
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, CopyChannelsArgs>? _copyChannels;

    // y[..., dOff + j] = x[..., sOff + j] for j < count; x: (…, Cs), y: (…, Cd) with the same leading dimensions.
    public void CopyChannels(Tensor source, int sourceChannelOffset, int count, Tensor destination, int destinationChannelOffset)
    {
        var (cs, cd) = OpChecks.CopyChannels(source, sourceChannelOffset, count, destination, destinationChannelOffset);
        if (count == 0 || source.Length == 0) return;
        long rows = source.Length / cs;
        _copyChannels ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, CopyChannelsArgs>(ChannelKernels.CopyChannels);
        var work = Plan(rows * count);
        _copyChannels(work.Threads, work, View(source), View(destination),
            new CopyChannelsArgs(count, cs, sourceChannelOffset, cd, destinationChannelOffset));
    }

    // parts[i]: (N, H, W, C_i) → y: (N, H, W, Σ C_i), parts in order along the last dimension.
    public void ConcatChannels(IReadOnlyList<Tensor> parts, Tensor destination)
    {
        OpChecks.ConcatChannels(parts, destination);
        int offset = 0;
        foreach (var t in parts)
        {
            CopyChannels(t, 0, t.Dim(-1), destination, offset);
            offset += t.Dim(-1);
        }
    }
}

/// <summary>Scalars of <see cref="ChannelKernels.CopyChannels"/>.</summary>
internal readonly struct CopyChannelsArgs(int count, int sourceChannels, int sourceOffset, int destinationChannels, int destinationOffset)
{
    public readonly int Count = count, Cs = sourceChannels, SOff = sourceOffset, Cd = destinationChannels, DOff = destinationOffset;
}

internal static class ChannelKernels
{
    // x: (rows, Cs) → y: (rows, Cd); one thread per (row, j), j < Count: y[row, DOff + j] = x[row, SOff + j].
    public static void CopyChannels(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, CopyChannelsArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long row = index / g.Count;
            int j = (int)(index - row * g.Count);
            y[row * g.Cd + g.DOff + j] = x[row * g.Cs + g.SOff + j];
    
        }
    }
}
