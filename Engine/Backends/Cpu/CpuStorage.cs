using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

/// <summary>64-byte aligned native float32 memory, so BLAS and SIMD kernels work on it in place.</summary>
internal sealed unsafe class CpuStorage : TensorStorage
{
    private readonly CpuMemoryPool? _pool;
    private float* _data;

    /// <param name="pool">Where the memory comes from and returns to; null = the system allocator.</param>
    public CpuStorage(long length, bool zero, CpuMemoryPool? pool = null) : base(length)
    {
        _pool = pool;
        _data = pool != null ? pool.Rent(length) : (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, length) * sizeof(float), 64);
        if (zero) NativeMemory.Clear(_data, (nuint)Math.Max(1, length) * sizeof(float));
    }

    public float* Pointer => _data != null ? _data : throw new ObjectDisposedException(nameof(CpuStorage));

    protected override void Free()
    {
        if (_pool != null) _pool.Return(_data, Length);
        else NativeMemory.AlignedFree(_data);
        _data = null;
    }
}
