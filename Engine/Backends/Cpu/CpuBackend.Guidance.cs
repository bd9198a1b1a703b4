using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Classifier-free guidance mixing of a doubled batch (DiT's forward_with_cfg).
public sealed unsafe partial class CpuBackend
{
    // x: (2n, C, …): rows [0, n) conditional, [n, 2n) unconditional.
    // For ch < guided: y[i, ch] = y[n + i, ch] = u + scale · (c − u) with c = x[i, ch], u = x[n + i, ch];
    // other channels: y = x.
    public void ClassifierFreeGuidance(Tensor x, int guidedChannels, float scale, Tensor destination)
    {
        int channels = OpChecks.ClassifierFreeGuidance(x, guidedChannels, destination);
        if (x.Length == 0) return;
        int n = x.Dim(0) / 2;
        long sampleLength = x.Length / x.Dim(0);
        int plane = checked((int)(sampleLength / channels));
        float* px = Pointer(x), py = Pointer(destination);
        if (px != py) Buffer.MemoryCopy(px, py, x.Length * sizeof(float), x.Length * sizeof(float));
        Parallel.For(0, n * guidedChannels, Options((long)n * guidedChannels * plane), job =>
        {
            int i = job / guidedChannels, ch = job % guidedChannels;
            long offset = (long)i * sampleLength + (long)ch * plane;
            var cond = new ReadOnlySpan<float>(px + offset, plane);
            var uncond = new ReadOnlySpan<float>(px + n * sampleLength + offset, plane);
            var condOut = new Span<float>(py + offset, plane);
            var uncondOut = new Span<float>(py + n * sampleLength + offset, plane);
            TensorPrimitives.Subtract(cond, uncond, condOut);   // c − u   (condOut may alias cond: read before written)
            TensorPrimitives.Multiply(condOut, scale, condOut); // scale · (c − u)
            TensorPrimitives.Add(uncond, condOut, condOut);     // u + scale · (c − u)
            condOut.CopyTo(uncondOut);
        });
    }
}
