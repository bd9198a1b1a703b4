using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Multi-head attention as two batched matrix products around a row softmax. For one head h, batched over the B samples,
// with Q (N, hd), K, V (M, hd) read in place from their channel windows (row stride = the tensor's channels):
//   S = Q·Kᵀ · 1/√hd              (B, N, M)  one strided-batched GEMM into a scratch tensor, alpha = 1/√hd
//   S += bias_h; P = softmax(S)   one thread per score row
//   Y = P·V                       (B, N, hd) one strided-batched GEMM, written into the head's channels of y (ld = C)
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ScoreRows>? _biasSoftmax;

    // qkv: (B, T, 3·C), channel s·C + h·hd + e = part s ∈ {q, k, v}, head h, dim e   →   y: (B, T, C), channel h·hd + e
    public void MultiHeadAttention(Tensor qkv, int heads, Tensor destination)
    {
        var (b, t, c) = OpChecks.MultiHeadAttention(qkv, heads, destination);
        if (b == 0 || t == 0 || c == 0) return;
        Attention(View(qkv), 3 * c, 0, View(qkv), 3 * c, c, 2 * c, null, 0, b, t, t, c, heads, View(destination));
    }

    // q: (B, N, Cq), channels [qOff, qOff + C); kv: (B, M, Ckv), keys at [kOff, kOff + C), values at [vOff, vOff + C);
    // bias: (H or 1, N, M) or null; y: (B, N, C), channel h·hd + e.
    public void ScaledDotProductAttention(Tensor q, int queryChannelOffset, Tensor kv, int keyChannelOffset, int valueChannelOffset,
        int heads, Tensor? bias, Tensor destination)
    {
        var shape = OpChecks.ScaledDotProductAttention(q, queryChannelOffset, kv, keyChannelOffset, valueChannelOffset, heads, bias, destination);
        if (shape.Empty) return;
        var (b, n, m, c, cq, ckv, biasHeads) = (shape.B, shape.N, shape.M, shape.C, shape.Cq, shape.Ckv, shape.BiasHeads);
        Attention(View(q), cq, queryChannelOffset, View(kv), ckv, keyChannelOffset, valueChannelOffset,
            bias == null ? null : View(bias), biasHeads, b, n, m, c, heads, View(destination));
    }

    /// <summary>The shared body of both attention ops (arguments already checked, nothing empty).</summary>
    private void Attention(ArrayView<float> q, int cq, int qOff, ArrayView<float> kv, int ckv, int kOff, int vOff,
        ArrayView<float>? bias, int biasHeads, int b, int n, int m, int c, int heads, ArrayView<float> y)
    {
        int hd = c / heads;
        float scale = (float)Math.Pow(hd, -0.5); // timm: head_dim ** -0.5 as a float32 factor
        long scoresPerSample = (long)n * m;
        using var scores = Empty(b, n, m);
        var s = View(scores);
        _biasSoftmax ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ScoreRows>(AttentionKernels.BiasSoftmax);
        for (int h = 0; h < heads; h++)
        {
            // S_b = scale · Q_b · K_bᵀ: K (M, hd) stored row-major is Kᵀ transposed
            GemmEngine.Run(new GemmShape(b, n, m, hd, scale, 0f),
                new GemmOperand(q, qOff + (long)h * hd, cq, (long)n * cq, false),
                new GemmOperand(kv, kOff + (long)h * hd, ckv, (long)m * ckv, true),
                new GemmOperand(s, 0, m, scoresPerSample, false));
            long biasOffset = bias == null ? 0 : (biasHeads == 1 ? 0 : h) * scoresPerSample;
            var work = Plan((long)b * n);
            _biasSoftmax(work.Threads, work, s, bias ?? s, new ScoreRows(n, m, bias == null ? 0 : 1, biasOffset));
            // Y_b[:, h·hd, +hd) = P_b · V_b
            GemmEngine.Run(new GemmShape(b, n, hd, m, 1f, 0f),
                new GemmOperand(s, 0, m, scoresPerSample, false),
                new GemmOperand(kv, vOff + (long)h * hd, ckv, (long)m * ckv, false),
                new GemmOperand(y, (long)h * hd, c, (long)n * c, false));
        }
    }
}

/// <summary>Score rows of one head: (B, N, M) scores, and where that head's (N, M) bias starts when there is one.</summary>
internal readonly record struct ScoreRows(int N, int M, int HasBias, long BiasOffset);

internal static class AttentionKernels
{
    // scores: (B, N, M) for one head, bias: (N, M) at BiasOffset (ignored without one); one thread per score row:
    // s = s + bias, then s = exp(s − max) / Σ exp(s − max) in place, the sum compensated (Kahan) in key order
    public static void BiasSoftmax(Index1D thread, Work work, ArrayView<float> scores, ArrayView<float> bias, ScoreRows r)
    {
        for (long row = thread; row < work.Count; row += work.Stride)
        {
            long start = (long)row * r.M;
            long biasStart = r.BiasOffset + (long)(row % r.N) * r.M;
            float max = float.NegativeInfinity;
            for (int j = 0; j < r.M; j++)
            {
                float v = scores[start + j];
                if (r.HasBias != 0)
                {
                    v = v + bias[biasStart + j];
                    scores[start + j] = v;
                }
                max = MathF.Max(max, v);
            }
            float sum = 0f, carry = 0f;
            for (int j = 0; j < r.M; j++)
            {
                float e = DeviceMath.Exp(scores[start + j] - max);
                scores[start + j] = e;
                float term = e - carry;
                float next = sum + term;
                carry = (next - sum) - term;
                sum = next;
            }
            float inverse = 1f / sum;
            for (int j = 0; j < r.M; j++) scores[start + j] = scores[start + j] * inverse;
    
        }
    }
}
