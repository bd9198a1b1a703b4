using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Multi-head self-attention (timm's Attention after the qkv projection, before proj).
public sealed unsafe partial class CpuBackend
{
    // qkv: (B, T, 3·C), channel s·C + h·hd + e = part s ∈ {q, k, v}, head h, dim e   →   y: (B, T, C), channel h·hd + e
    // For each (b, h), with Q, K, V the (T, hd) slices read in place (row stride 3·C):
    //   S = Q·Kᵀ / √hd        (T, T)   one sgemm
    //   P = softmax(S) by row
    //   Y = P·V               (T, hd)  one sgemm, written straight into the head's columns of y (row stride C)
    public void MultiHeadAttention(Tensor qkv, int heads, Tensor destination)
    {
        var (b, t, c) = OpChecks.MultiHeadAttention(qkv, heads, destination);
        int hd = c / heads;
        if (b == 0 || t == 0 || c == 0) return;
        float scale = (float)Math.Pow(hd, -0.5); // timm: head_dim ** -0.5, used as a float32 factor
        float* pqkv = Pointer(qkv), py = Pointer(destination);
        int pairs = b * heads;

        void OneHead(int pair, float* scores)
        {
            int n = pair / heads, h = pair % heads;
            float* q = pqkv + (long)n * t * 3 * c + h * hd;
            float* k = q + c;
            float* v = q + 2 * c;
            OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.Trans, t, t, hd, scale, q, 3 * c, k, 3 * c, 0f, scores, t);
            for (int i = 0; i < t; i++) SoftmaxRow(new Span<float>(scores + (long)i * t, t));
            OpenBlas.Sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, t, hd, t, 1f, scores, t, v, 3 * c, 0f,
                py + (long)n * t * c + h * hd, c);
        }

        if (Threads == 1 || pairs == 1)
        {
            using var scores = new NativeBuffer(_pool, (long)t * t);
            for (int p = 0; p < pairs; p++) OneHead(p, scores.Pointer);
            return;
        }
        // One (sample, head) per task, each product single-threaded.
        Parallel.For(0, pairs, new ParallelOptions { MaxDegreeOfParallelism = Threads },
            () => new NativeBuffer(_pool, (long)t * t),
            (p, _, scores) =>
            {
                OneHead(p, scores.Pointer);
                return scores;
            },
            scores => scores.Dispose());
    }

    // Numerically stable softmax of one row, in place: exp(x − max) / Σ exp(x − max).
    private static void SoftmaxRow(Span<float> row)
    {
        float max = TensorPrimitives.Max(row);
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        float sum = TensorPrimitives.Sum(row);
        TensorPrimitives.Multiply(row, 1f / sum, row);
    }
}
