using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Per-token kernels of a DiT block: LayerNorm without affine, adaLN modulation and the gated residuals.
// Token activations are (B, T, C); per-sample vectors are (B, C) and broadcast over the T tokens.
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, int, float>? _layerNorm;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenShape>? _modulate, _gatedAdd, _gatedAddBroadcast;

    public void LayerNorm(Tensor x, float eps, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        int c = x.Rank == 0 ? 1 : x.Dim(-1);
        if (c == 0 || x.Length == 0) return;
        _layerNorm ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, int, float>(TransformerKernels.LayerNorm);
        var work = Plan(x.Length / c);
        _layerNorm(work.Threads, work, View(x), View(destination), c, eps);
    }

    public void Modulate(Tensor x, Tensor shift, Tensor scale, Tensor destination)
    {
        var shape = TokensAndPerSample(x, "Modulate", shift, scale);
        OpChecks.SameShape(x, destination);
        if (x.Length == 0) return;
        _modulate ??= LoadTokenKernel(TransformerKernels.Modulate);
        var work = Plan(x.Length);
        _modulate(work.Threads, work, View(x), View(shift), View(scale), View(destination), shape);
    }

    public void GatedAdd(Tensor x, Tensor gate, Tensor residual, Tensor destination)
    {
        var shape = TokensAndPerSample(x, "GatedAdd", gate);
        OpChecks.SameShape(x, residual, destination);
        if (x.Length == 0) return;
        _gatedAdd ??= LoadTokenKernel(TransformerKernels.GatedAdd);
        var work = Plan(x.Length);
        _gatedAdd(work.Threads, work, View(x), View(gate), View(residual), View(destination), shape);
    }

    public void GatedAddBroadcast(Tensor x, Tensor gate, Tensor residual, Tensor destination)
    {
        var shape = TokensAndPerSample(x, "GatedAddBroadcast", gate, residual);
        OpChecks.SameShape(x, destination);
        if (x.Length == 0) return;
        _gatedAddBroadcast ??= LoadTokenKernel(TransformerKernels.GatedAddBroadcast);
        var work = Plan(x.Length);
        _gatedAddBroadcast(work.Threads, work, View(x), View(gate), View(residual), View(destination), shape);
    }

    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenShape> LoadTokenKernel(
        Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenShape> kernel) =>
        Accelerator.LoadAutoGroupedStreamKernel(kernel);

    /// <summary>Checks x: (B, T, C) and each per-sample tensor: (B, C), with the CPU backend's messages.</summary>
    private static TokenShape TokensAndPerSample(Tensor x, string op, params Tensor[] perSample)
    {
        if (x.Rank != 3) throw new ArgumentException($"{op}: x must be (B, T, C), got {x}");
        int b = x.Dim(0), t = x.Dim(1), c = x.Dim(2);
        foreach (var v in perSample)
            if (v.Rank != 2 || v.Dim(0) != b || v.Dim(1) != c)
                throw new ArgumentException($"{op}: per-sample vectors must be ({b}, {c}) for x {x}, got {v}");
        return new TokenShape(t, c);
    }
}

/// <summary>Tokens per sample and channels of a (B, T, C) activation.</summary>
internal readonly record struct TokenShape(int T, int C);

internal static class TransformerKernels
{
    // x, y: (rows, C), one thread per row: y = (x − mean) / √(var + eps), var biased (÷ C); mean, then the variance of
    // x − mean (two passes, no cancellation), both summed with compensation in column order
    public static void LayerNorm(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, int c, float eps)
    {
        for (long row = thread; row < work.Count; row += work.Stride)
        {
            long start = (long)row * c;
            float sum = 0f, carry = 0f;
            for (int k = 0; k < c; k++)
            {
                float term = x[start + k] - carry;
                float next = sum + term;
                carry = (next - sum) - term;
                sum = next;
            }
            float mean = sum / c;
            sum = 0f;
            carry = 0f;
            for (int k = 0; k < c; k++)
            {
                float centred = x[start + k] - mean;
                float term = centred * centred - carry;
                float next = sum + term;
                carry = (next - sum) - term;
                sum = next;
            }
            float variance = sum / c;
            float rstd = 1f / MathF.Sqrt(variance + eps);
            for (int k = 0; k < c; k++) y[start + k] = (x[start + k] - mean) * rstd;
    
        }
    }

    // x, y: (B, T, C), shift/scale: (B, C) → y[b, t, :] = x[b, t, :] · (1 + scale[b, :]) + shift[b, :]
    public static void Modulate(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> y, TokenShape s)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
            long perSample = (long)i / ((long)s.T * s.C) * s.C + i % s.C;
            float scaled = x[i] * (1f + scale[perSample]);
            y[i] = scaled + shift[perSample];
    
        }
    }

    // x, r, y: (B, T, C), gate: (B, C) → y[b, t, :] = x[b, t, :] + gate[b, :] · r[b, t, :]
    public static void GatedAdd(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> gate, ArrayView<float> r, ArrayView<float> y, TokenShape s)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
            long perSample = (long)i / ((long)s.T * s.C) * s.C + i % s.C;
            float gated = r[i] * gate[perSample];
            y[i] = gated + x[i];
    
        }
    }

    // x, y: (B, T, C), gate, r: (B, C) → y[b, t, :] = x[b, t, :] + gate[b, :] · r[b, :]
    public static void GatedAddBroadcast(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> gate, ArrayView<float> r, ArrayView<float> y, TokenShape s)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
            long perSample = (long)i / ((long)s.T * s.C) * s.C + i % s.C;
            float gated = gate[perSample] * r[perSample];
            y[i] = x[i] + gated;
    
        }
    }
}
