using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Image ⇄ token reshuffles of a patch-based transformer, and classifier-free guidance of a doubled batch.
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, PatchGrid>? _patchify, _unpatchify;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, GuidanceShape>? _guidance;

    // x: (B, C, H, W) → y: (B, Gh·Gw, C·p·p) with Gh = H/p, Gw = W/p
    public void Patchify(Tensor x, int patch, Tensor destination)
    {
        var (b, c, h, w, p, gh, gw, f) = OpChecks.Patchify(x, patch, destination);
        if (x.Length == 0) return;
        _patchify ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, PatchGrid>(PatchKernels.Patchify);
        var work = Plan(destination.Length);
        _patchify(work.Threads, work, View(x), View(destination), new PatchGrid(c, h, w, p));
    }

    // x: (B, Gh·Gw, p·p·C) → y: (B, C, H, W) with H = Gh·p, W = Gw·p (taken from y's shape)
    public void Unpatchify(Tensor x, int patch, Tensor destination)
    {
        var (b, c, h, w, p, gh, gw, f) = OpChecks.Unpatchify(x, patch, destination);
        if (destination.Length == 0) return;
        _unpatchify ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, PatchGrid>(PatchKernels.Unpatchify);
        var work = Plan(destination.Length);
        _unpatchify(work.Threads, work, View(x), View(destination), new PatchGrid(c, h, w, p));
    }

    // x: (2n, C, …): rows [0, n) conditional, [n, 2n) unconditional; guided channels get u + scale · (c − u) in both halves
    public void ClassifierFreeGuidance(Tensor x, int guidedChannels, float scale, Tensor destination)
    {
        int channels = OpChecks.ClassifierFreeGuidance(x, guidedChannels, destination);
        if (x.Length == 0) return;
        long sampleLength = x.Length / x.Dim(0);
        int plane = checked((int)(sampleLength / channels));
        _guidance ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, GuidanceShape>(PatchKernels.ClassifierFreeGuidance);
        var work = Plan(x.Length / 2);
        _guidance(work.Threads, work, View(x), View(destination), new GuidanceShape(x.Length / 2, sampleLength, plane, guidedChannels, scale));
    }
}

/// <summary>Channels, image size and patch size of a patch grid.</summary>
internal readonly record struct PatchGrid(int C, int H, int W, int P);

/// <summary>A doubled batch for guidance: elements per half, per sample and per channel plane; guided channels and scale.</summary>
internal readonly record struct GuidanceShape(long Half, long SampleLength, int Plane, int Guided, float Scale);

internal static class PatchKernels
{
    // x: (B, C, H, W) → y: (B, Gh·Gw, C·p·p), one thread per y element:
    // y[b, hh·Gw + ww, (c·p + i)·p + j] = x[b, c, hh·p + i, ww·p + j]
    public static void Patchify(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, PatchGrid g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            int p = g.P, gw = g.W / p, tokens = g.H / p * gw, f = g.C * p * p;
            long token = index / f;
            int feature = (int)(index - token * f);
            int b = (int)(token / tokens), t = (int)(token - (long)b * tokens);
            int hh = t / gw, ww = t - hh * gw;
            int c = feature / (p * p), ij = feature - c * p * p;
            int i = ij / p, j = ij - i * p;
            y[index] = x[(((long)b * g.C + c) * g.H + hh * p + i) * g.W + ww * p + j];
    
        }
    }

    // x: (B, Gh·Gw, p·p·C) → y: (B, C, H, W), one thread per y element:
    // y[b, c, hh·p + i, ww·p + j] = x[b, hh·Gw + ww, (i·p + j)·C + c]
    public static void Unpatchify(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, PatchGrid g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            int p = g.P, gw = g.W / p, tokens = g.H / p * gw, f = p * p * g.C;
            long pixel = index;
            int xx = (int)(pixel % g.W);
            pixel /= g.W;
            int yy = (int)(pixel % g.H);
            pixel /= g.H;
            int c = (int)(pixel % g.C);
            long b = pixel / g.C;
            int hh = yy / p, i = yy - hh * p, ww = xx / p, j = xx - ww * p;
            y[index] = x[(b * tokens + hh * gw + ww) * f + (i * p + j) * g.C + c];
    
        }
    }

    // x, y: (2n, C, plane), one thread per element of the conditional half (it writes both halves, so y may be x):
    // guided channel: y[i] = y[n + i] = u + scale · (c − u) with c = x[i], u = x[n + i]; other channels: y = x
    public static void ClassifierFreeGuidance(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, GuidanceShape g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long cond = index, uncond = index + g.Half;
            int channel = (int)(index % g.SampleLength / g.Plane);
            float c = x[cond], u = x[uncond];
            if (channel < g.Guided)
            {
                float difference = (c - u) * g.Scale;
                float mixed = u + difference;
                y[cond] = mixed;
                y[uncond] = mixed;
            }
            else
            {
                y[cond] = c;
                y[uncond] = u;
            }
    
        }
    }
}
