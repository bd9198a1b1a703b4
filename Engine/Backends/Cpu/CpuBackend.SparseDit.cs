using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Kernels of FlexDiT (SparseDiT): attention between two token sets with an optional score bias, adaptive average
// pooling of the token grid, nearest-neighbour resizing back to it, and a per-sample gated residual.
public sealed unsafe partial class CpuBackend
{
    // q: (B, N, Cq), channels [qOff, qOff + C); kv: (B, M, Ckv), keys at [kOff, kOff + C), values at [vOff, vOff + C);
    // bias: (H or 1, N, M) or null; y: (B, N, C), channel h·hd + e.
    // For each (b, h), with Q (N, hd), K, V (M, hd) read in place:
    //   S = bias_h (copied in, or 0);  S = Q·Kᵀ / √hd + S   one sgemm with beta = 1
    //   P = softmax(S) by row;         Y = P·V              one sgemm into the head's columns of y
    public void ScaledDotProductAttention(Tensor q, int queryChannelOffset, Tensor kv, int keyChannelOffset, int valueChannelOffset,
        int heads, Tensor? bias, Tensor destination)
    {
        var shape = OpChecks.ScaledDotProductAttention(q, queryChannelOffset, kv, keyChannelOffset, valueChannelOffset, heads, bias, destination);
        if (shape.Empty) return;
        var (b, n, m, c, cq, ckv, biasHeads) = (shape.B, shape.N, shape.M, shape.C, shape.Cq, shape.Ckv, shape.BiasHeads);
        int hd = c / heads;
        float scale = (float)Math.Pow(hd, -0.5); // timm: head_dim ** -0.5 as a float32 factor
        float* pq = Pointer(q) + queryChannelOffset, pkv = Pointer(kv), py = Pointer(destination);
        float* pbias = bias == null ? null : Pointer(bias);
        int pairs = b * heads;
        long scoreFloats = (long)n * m;

        void OneHead(int pair, float* scores)
        {
            int s = pair / heads, h = pair % heads;
            float* qh = pq + (long)s * n * cq + h * hd;
            float* kh = pkv + (long)s * m * ckv + keyChannelOffset + h * hd;
            float* vh = pkv + (long)s * m * ckv + valueChannelOffset + h * hd;
            float beta = 0f;
            if (pbias != null)
            {
                new ReadOnlySpan<float>(pbias + (biasHeads == 1 ? 0 : h) * scoreFloats, checked((int)scoreFloats)).CopyTo(new Span<float>(scores, (int)scoreFloats));
                beta = 1f;
            }
            OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.Trans, n, m, hd, scale, qh, cq, kh, ckv, beta, scores, m);
            for (int i = 0; i < n; i++) SoftmaxRow(new Span<float>(scores + (long)i * m, m));
            OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, n, hd, m, 1f, scores, m, vh, ckv, 0f,
                py + (long)s * n * c + h * hd, c);
        }

        if (Threads == 1 || pairs == 1)
        {
            using var scores = new NativeBuffer(_pool, scoreFloats);
            for (int p = 0; p < pairs; p++) OneHead(p, scores.Pointer);
            return;
        }
        // One (sample, head) per task, each product single-threaded.
        Parallel.For(0, pairs, new ParallelOptions { MaxDegreeOfParallelism = Threads },
            () => new NativeBuffer(_pool, scoreFloats),
            (p, _, scores) =>
            {
                OneHead(p, scores.Pointer);
                return scores;
            },
            scores => scores.Dispose());
    }

    // x: (N, H, W, C) → y: (N, OH, OW, C), each output pixel the mean of its bin (PyTorch's start/end index rule).
    public void AdaptiveAvgPool2d(Tensor x, Tensor destination)
    {
        var (n, h, w, c, oh, ow) = ResizeShapes(x, destination, "AdaptiveAvgPool2d");
        if (h == 0 || w == 0) throw new ArgumentException($"AdaptiveAvgPool2d of an empty map {x}");
        float* px = Pointer(x), py = Pointer(destination);
        Parallel.For(0L, (long)n * oh, Options(x.Length + destination.Length), row =>
        {
            int img = (int)(row / oh), i = (int)(row % oh);
            int h0 = BinStart(i, h, oh), h1 = BinEnd(i, h, oh);
            var sum = new double[c];
            for (int j = 0; j < ow; j++)
            {
                int w0 = BinStart(j, w, ow), w1 = BinEnd(j, w, ow);
                Array.Clear(sum);
                for (int y = h0; y < h1; y++)
                    for (int xx = w0; xx < w1; xx++)
                    {
                        float* pixel = px + (((long)img * h + y) * w + xx) * c;
                        for (int k = 0; k < c; k++) sum[k] += pixel[k];
                    }
                int count = (h1 - h0) * (w1 - w0);
                float* target = py + (row * ow + j) * c;
                for (int k = 0; k < c; k++) target[k] = (float)(sum[k] / count);
            }
        });
    }

    // ⌊i·in / out⌋ and ⌈(i + 1)·in / out⌉ in integers
    private static int BinStart(int i, int inSize, int outSize) => (int)((long)i * inSize / outSize);

    private static int BinEnd(int i, int inSize, int outSize) => (int)(((long)(i + 1) * inSize + outSize - 1) / outSize);

    // x: (N, H, W, C) → y: (N, OH, OW, C), y[n, i, j] = x[n, src(i), src(j)] with PyTorch's nearest source index
    public void UpsampleNearest(Tensor x, Tensor destination)
    {
        var (n, h, w, c, oh, ow) = ResizeShapes(x, destination, "UpsampleNearest");
        if ((h == 0 || w == 0) && destination.Length > 0) throw new ArgumentException($"UpsampleNearest of an empty map {x}");
        var rows = NearestSources(h, oh);
        var cols = NearestSources(w, ow);
        float* px = Pointer(x), py = Pointer(destination);
        Parallel.For(0L, (long)n * oh, Options(destination.Length), row =>
        {
            int img = (int)(row / oh), i = (int)(row % oh);
            float* source = px + ((long)img * h + rows[i]) * w * c;
            for (int j = 0; j < ow; j++)
                new ReadOnlySpan<float>(source + (long)cols[j] * c, c).CopyTo(new Span<float>(py + (row * ow + j) * c, c));
        });
    }

    // PyTorch (UpSample.h, nearest_idx): identity when sizes agree, i >> 1 when doubling, else
    // min(⌊i · (float)(in / out)⌋, in − 1) with a float32 scale and a float32 product.
    private static int[] NearestSources(int inSize, int outSize)
    {
        var src = new int[outSize];
        float scale = (float)inSize / outSize;
        for (int i = 0; i < outSize; i++)
            src[i] = outSize == inSize ? i
                : outSize == 2 * inSize ? i >> 1
                : Math.Min((int)MathF.Floor(i * scale), inSize - 1);
        return src;
    }

    private static (int N, int H, int W, int C, int OH, int OW) ResizeShapes(Tensor x, Tensor destination, string op)
    {
        if (x.Rank != 4 || destination.Rank != 4 || destination.Dim(0) != x.Dim(0) || destination.Dim(3) != x.Dim(3))
            throw new ArgumentException($"{op} maps (N, H, W, C) to (N, OH, OW, C), got {x} → {destination}");
        return (x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), destination.Dim(1), destination.Dim(2));
    }

    // x: (B, T, C), gate, r: (B, C) → y[b, t, :] = x[b, t, :] + gate[b, :] · r[b, :]
    public void GatedAddBroadcast(Tensor x, Tensor gate, Tensor residual, Tensor destination)
    {
        var (b, t, c) = TokensAndPerSample(x, "GatedAddBroadcast", gate, residual);
        OpChecks.SameShape(x, destination);
        if (b == 0 || t == 0 || c == 0) return;
        var product = new float[(long)b * c];
        TensorPrimitives.Multiply(new ReadOnlySpan<float>(Pointer(gate), product.Length), new ReadOnlySpan<float>(Pointer(residual), product.Length), product);
        float* px = Pointer(x), py = Pointer(destination);
        ForRowBlocks((long)b * t, c, (r0, count) =>
        {
            for (long r = r0; r < r0 + count; r++)
                TensorPrimitives.Add(new ReadOnlySpan<float>(px + r * c, c), product.AsSpan((int)(r / t * c), c), new Span<float>(py + r * c, c));
        });
    }
}
