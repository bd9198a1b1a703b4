using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // Element-wise kernels: TensorPrimitives does the SIMD work; large tensors are split over the threads.
    private const int ParallelThreshold = 1 << 16;

    public void Add(Tensor x, Tensor y, Tensor destination)
    {
        OpChecks.SameShape(x, y, destination);
        float* px = Pointer(x), py = Pointer(y), pd = Pointer(destination);
        ForChunks(x.Length, (start, count) => TensorPrimitives.Add(Span(px, start, count), Span(py, start, count), Span(pd, start, count)));
    }

    public void Multiply(Tensor x, Tensor y, Tensor destination)
    {
        OpChecks.SameShape(x, y, destination);
        float* px = Pointer(x), py = Pointer(y), pd = Pointer(destination);
        ForChunks(x.Length, (start, count) => TensorPrimitives.Multiply(Span(px, start, count), Span(py, start, count), Span(pd, start, count)));
    }

    public void ScaleShift(Tensor x, float scale, float shift, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        float* px = Pointer(x), pd = Pointer(destination);
        ForChunks(x.Length, (start, count) =>
        {
            var dst = Span(pd, start, count);
            TensorPrimitives.Multiply(Span(px, start, count), scale, dst);
            TensorPrimitives.Add(dst, shift, dst);
        });
    }

    // silu(x) = x · sigmoid(x); sigmoid goes to a scratch buffer so that x survives when destination is x (in place)
    public void Silu(Tensor x, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        float* px = Pointer(x), pd = Pointer(destination);
        ForChunks(x.Length, (start, count) =>
        {
            var src = Span(px, start, count);
            var dst = Span(pd, start, count);
            // sigmoid into scratch: with destination = x, writing it into dst would overwrite x before the product
            var sigmoid = count <= 4096 ? stackalloc float[count] : new float[count];
            TensorPrimitives.Sigmoid(src, sigmoid);
            TensorPrimitives.Multiply(src, sigmoid, dst);
        });
    }

    // gelu_tanh(x) = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
    public void GeluTanh(Tensor x, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        float* px = Pointer(x), pd = Pointer(destination);
        const float c = 0.7978845608028654f; // √(2/π)
        ForChunks(x.Length, (start, count) =>
        {
            var src = Span(px, start, count);
            var dst = Span(pd, start, count);
            var inner = count <= 4096 ? stackalloc float[count] : new float[count];
            TensorPrimitives.Multiply(src, src, inner);                 // x²
            TensorPrimitives.Multiply(inner, 0.044715f, inner);
            TensorPrimitives.Add(inner, 1f, inner);                     // 1 + 0.044715 x²
            TensorPrimitives.Multiply(inner, src, inner);               // x + 0.044715 x³
            TensorPrimitives.Multiply(inner, c, inner);
            TensorPrimitives.Tanh(inner, inner);
            TensorPrimitives.Add(inner, 1f, inner);
            TensorPrimitives.Multiply(inner, 0.5f, inner);              // (1 + tanh) / 2
            TensorPrimitives.Multiply(inner, src, dst);
        });
    }

    public void SoftmaxLastDim(Tensor x, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        int cols = x.Rank == 0 ? 1 : x.Dim(-1);
        if (cols == 0) return;
        long rows = x.Length / cols;
        float* px = Pointer(x), pd = Pointer(destination);
        Parallel.For(0L, rows, Options(rows * cols), r =>
            TensorPrimitives.SoftMax(Span(px, r * cols, cols), Span(pd, r * cols, cols)));
    }

    private static Span<float> Span(float* p, long start, int count) => new(p + start, count);

    private ParallelOptions Options(long work) => new() { MaxDegreeOfParallelism = work < ParallelThreshold ? 1 : Threads };

    /// <summary>
    /// Calls <paramref name="body"/> on consecutive pieces of <see cref="ChunkLength"/> values covering [0, length), in
    /// parallel when large. The pieces are the same for any thread count: TensorPrimitives treats a piece's tail
    /// differently from its body, so moving a boundary could move bits.
    /// </summary>
    private void ForChunks(long length, Action<long, int> body)
    {
        if (length == 0) return;
        long pieces = (length + ChunkLength - 1) / ChunkLength;
        Parallel.For(0L, pieces, Options(length), i =>
        {
            long start = i * ChunkLength;
            body(start, (int)Math.Min(ChunkLength, length - start));
        });
    }

    private const int ChunkLength = 1 << 15; // 128 KiB of floats per piece: in cache, cheap to schedule
}
