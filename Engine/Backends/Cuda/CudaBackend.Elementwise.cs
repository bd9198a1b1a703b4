using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Element-wise kernels: one thread per element, each thread reads its inputs before writing its output, so the
// destination may be one of the inputs (in place). Softmax: one thread per row.
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _add, _multiply;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, float, float>? _scaleShift;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>>? _silu, _geluTanh;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, int>? _softmaxRows;

    public void Add(Tensor x, Tensor y, Tensor destination)
    {
        OpChecks.SameShape(x, y, destination);
        if (x.Length == 0) return;
        _add ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Add);
        var work = Plan(x.Length);
        _add(work.Threads, work, View(x), View(y), View(destination));
    }

    public void Multiply(Tensor x, Tensor y, Tensor destination)
    {
        OpChecks.SameShape(x, y, destination);
        if (x.Length == 0) return;
        _multiply ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Multiply);
        var work = Plan(x.Length);
        _multiply(work.Threads, work, View(x), View(y), View(destination));
    }

    public void ScaleShift(Tensor x, float scale, float shift, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        if (x.Length == 0) return;
        _scaleShift ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, float, float>(ElementwiseKernels.ScaleShift);
        var work = Plan(x.Length);
        _scaleShift(work.Threads, work, View(x), View(destination), scale, shift);
    }

    public void Silu(Tensor x, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        if (x.Length == 0) return;
        _silu ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Silu);
        var work = Plan(x.Length);
        _silu(work.Threads, work, View(x), View(destination));
    }

    public void GeluTanh(Tensor x, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        if (x.Length == 0) return;
        _geluTanh ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.GeluTanh);
        var work = Plan(x.Length);
        _geluTanh(work.Threads, work, View(x), View(destination));
    }

    public void SoftmaxLastDim(Tensor x, Tensor destination)
    {
        OpChecks.SameShape(x, destination);
        int cols = x.Rank == 0 ? 1 : x.Dim(-1);
        if (cols == 0 || x.Length == 0) return;
        SoftmaxRows(View(x), View(destination), x.Length / cols, cols);
    }

    /// <summary>Softmax of each of <paramref name="rows"/> consecutive rows of <paramref name="cols"/> values (may be in place).</summary>
    private void SoftmaxRows(ArrayView<float> x, ArrayView<float> destination, long rows, int cols)
    {
        _softmaxRows ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.SoftmaxRows);
        var work = Plan(rows);
        _softmaxRows(work.Threads, work, x, destination, cols);
    }
}

internal static class ElementwiseKernels
{
    // x, y, d: (n) → d = x + y
    public static void Add(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ArrayView<float> d)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
    d[i] = x[i] + y[i];
        }
    }

    // x, y, d: (n) → d = x · y
    public static void Multiply(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ArrayView<float> d)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
    d[i] = x[i] * y[i];
        }
    }

    // x, d: (n) → d = x · scale + shift (product rounded, then the sum, as the CPU backend)
    public static void ScaleShift(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> d, float scale, float shift)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
            float scaled = x[i] * scale;
            d[i] = scaled + shift;
    
        }
    }

    // x, d: (n) → d = x · sigmoid(x), sigmoid(x) = 1 / (1 + exp(−x))
    public static void Silu(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> d)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
            float v = x[i];
            float sigmoid = 1f / (1f + DeviceMath.Exp(-v));
            d[i] = v * sigmoid;
    
        }
    }

    // x, d: (n) → d = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), evaluated in the CPU backend's order
    public static void GeluTanh(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> d)
    {
        for (long i = thread; i < work.Count; i += work.Stride)
        {
            const float c = 0.7978845608028654f; // √(2/π)
            float v = x[i];
            float inner = v * v;                 // x²
            inner = inner * 0.044715f;
            inner = inner + 1f;                  // 1 + 0.044715 x²
            inner = inner * v;                   // x + 0.044715 x³
            inner = inner * c;
            float half = (DeviceMath.Tanh(inner) + 1f) * 0.5f;
            d[i] = half * v;
    
        }
    }

    // x, d: (rows, cols), one thread per row: d = exp(x − max) / Σ exp(x − max), the sum compensated (Kahan) in column order
    public static void SoftmaxRows(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> d, int cols)
    {
        for (long row = thread; row < work.Count; row += work.Stride)
        {
            long start = (long)row * cols;
            float max = x[start];
            for (int j = 1; j < cols; j++) max = MathF.Max(max, x[start + j]);
            float sum = 0f, carry = 0f;
            for (int j = 0; j < cols; j++)
            {
                float e = DeviceMath.Exp(x[start + j] - max);
                d[start + j] = e;
                float term = e - carry;
                float next = sum + term;
                carry = (next - sum) - term;
                sum = next;
            }
            float inverse = 1f / sum;
            for (int j = 0; j < cols; j++) d[start + j] = d[start + j] * inverse;
    
        }
    }
}
