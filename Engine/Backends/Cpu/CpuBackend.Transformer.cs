using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Per-token kernels of a DiT block: LayerNorm without affine, adaLN modulation and the gated residual.
// Token activations are (B, T, C); per-sample modulation vectors are (B, C) and broadcast over the T tokens.
public sealed unsafe partial class CpuBackend
{
    // x: (…, C) → y: (…, C); per row: y = (x − mean) · 1/√(var + eps), var biased (÷ C), as torch.nn.LayerNorm.
    public void LayerNorm(Tensor x, float eps, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        int c = x.Rank == 0 ? 1 : x.Dim(-1);
        if (c == 0 || x.Length == 0) return;
        float* px = Pointer(x), py = Pointer(destination);
        ForRowBlocks(x.Length / c, c, (r0, count) =>
        {
            for (long r = r0; r < r0 + count; r++)
            {
                var row = new ReadOnlySpan<float>(px + r * c, c);
                var dst = new Span<float>(py + r * c, c);
                float mean = TensorPrimitives.Sum(row) / c;
                TensorPrimitives.Subtract(row, mean, dst);              // x − mean (two passes: no cancellation)
                float variance = TensorPrimitives.SumOfSquares(dst) / c;
                float rstd = 1f / MathF.Sqrt(variance + eps);
                TensorPrimitives.Multiply(dst, rstd, dst);
            }
        });
    }

    // x: (B, T, C), shift/scale: (B, C) → y[b, t, :] = x[b, t, :] · (1 + scale[b, :]) + shift[b, :]
    public void Modulate(Tensor x, Tensor shift, Tensor scale, Tensor destination)
    {
        var (b, t, c) = TokensAndPerSample(x, "Modulate", shift, scale);
        OpChecks.SameShape(x, destination);
        float* px = Pointer(x), pshift = Pointer(shift), pscale = Pointer(scale), py = Pointer(destination);
        ForRowBlocks((long)b * t, c, (r0, count) =>
        {
            var onePlusScale = c <= 4096 ? stackalloc float[c] : new float[c];
            long cachedSample = -1;
            for (long r = r0; r < r0 + count; r++)
            {
                long sample = r / t;
                if (sample != cachedSample)
                {
                    TensorPrimitives.Add(new ReadOnlySpan<float>(pscale + sample * c, c), 1f, onePlusScale);
                    cachedSample = sample;
                }
                // (x · (1 + scale)) + shift, rounded after the product as PyTorch does
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(px + r * c, c), onePlusScale,
                    new ReadOnlySpan<float>(pshift + sample * c, c), new Span<float>(py + r * c, c));
            }
        });
    }

    // x, r: (B, T, C), gate: (B, C) → y[b, t, :] = x[b, t, :] + gate[b, :] · r[b, t, :]
    public void GatedAdd(Tensor x, Tensor gate, Tensor residual, Tensor destination)
    {
        var (b, t, c) = TokensAndPerSample(x, "GatedAdd", gate);
        OpChecks.SameShape(x, residual, destination);
        float* px = Pointer(x), pg = Pointer(gate), pr = Pointer(residual), py = Pointer(destination);
        ForRowBlocks((long)b * t, c, (r0, count) =>
        {
            for (long r = r0; r < r0 + count; r++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(pr + r * c, c), new ReadOnlySpan<float>(pg + r / t * c, c),
                    new ReadOnlySpan<float>(px + r * c, c), new Span<float>(py + r * c, c));
        });
    }

    /// <summary>Checks x: (B, T, C) and each per-sample tensor: (B, C); returns (B, T, C).</summary>
    private static (int B, int T, int C) TokensAndPerSample(Tensor x, string op, params Tensor[] perSample)
    {
        if (x.Rank != 3) throw new ArgumentException($"{op}: x must be (B, T, C), got {x}");
        int b = x.Dim(0), t = x.Dim(1), c = x.Dim(2);
        foreach (var v in perSample)
            if (v.Rank != 2 || v.Dim(0) != b || v.Dim(1) != c)
                throw new ArgumentException($"{op}: per-sample vectors must be ({b}, {c}) for x {x}, got {v}");
        return (b, t, c);
    }

    /// <summary>Calls <paramref name="body"/>(firstRow, rowCount) on blocks of rows of <paramref name="cols"/> values, in parallel when large.</summary>
    private void ForRowBlocks(long rows, int cols, Action<long, long> body)
    {
        if (rows == 0) return;
        long perPiece = Math.Max(1, ParallelThreshold / Math.Max(1, cols));
        long pieces = (rows + perPiece - 1) / perPiece;
        Parallel.For(0L, pieces, Options(rows * cols), i =>
        {
            long r0 = i * perPiece;
            body(r0, Math.Min(perPiece, rows - r0));
        });
    }
}
