using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

/// <summary>64-byte aligned native float32 memory, so BLAS and SIMD kernels work on it in place.</summary>
internal sealed unsafe class CpuStorage : TensorStorage
{
    private float* _data;

    public CpuStorage(long length, bool zero) : base(length)
    {
        nuint bytes = (nuint)Math.Max(1, length) * sizeof(float);
        _data = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        if (zero) NativeMemory.Clear(_data, bytes);
    }

    public float* Pointer => _data != null ? _data : throw new ObjectDisposedException(nameof(CpuStorage));

    protected override void Free()
    {
        NativeMemory.AlignedFree(_data);
        _data = null;
    }
}
