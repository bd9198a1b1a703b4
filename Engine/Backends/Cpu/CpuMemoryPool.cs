using System.Runtime.InteropServices;

namespace DyDiT.Eval.Engine.Backends.Cpu;

/// <summary>
/// Keeps freed large blocks of one backend for reuse, keyed by their exact size. A network allocates the same
/// activation shapes batch after batch; reusing them avoids mapping fresh pages (and the kernel zeroing them) for
/// every layer. At most <see cref="MaxCachedBytes"/> are kept; blocks beyond that, and all blocks once the pool is
/// disposed, go back to the system.
/// </summary>
internal sealed unsafe class CpuMemoryPool : IDisposable
{
    /// <summary>Blocks smaller than this (in floats) are left to the allocator, which recycles them cheaply.</summary>
    public const long MinPooledFloats = 1 << 16;

    private readonly Dictionary<long, Stack<IntPtr>> _free = [];
    private readonly Lock _lock = new();
    private long _cachedBytes;
    private bool _disposed;

    public CpuMemoryPool(long maxCachedBytes) => MaxCachedBytes = maxCachedBytes;

    public long MaxCachedBytes { get; }

    /// <summary>64-byte aligned memory for <paramref name="floats"/> values; contents unspecified.</summary>
    public float* Rent(long floats)
    {
        if (floats >= MinPooledFloats)
        {
            lock (_lock)
            {
                if (_free.TryGetValue(floats, out var stack) && stack.TryPop(out var p))
                {
                    _cachedBytes -= floats * sizeof(float);
                    return (float*)p;
                }
            }
        }
        return (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, floats) * sizeof(float), 64);
    }

    public void Return(float* p, long floats)
    {
        if (floats >= MinPooledFloats)
        {
            lock (_lock)
            {
                if (!_disposed && _cachedBytes + floats * sizeof(float) <= MaxCachedBytes)
                {
                    if (!_free.TryGetValue(floats, out var stack)) _free[floats] = stack = new Stack<IntPtr>();
                    stack.Push((IntPtr)p);
                    _cachedBytes += floats * sizeof(float);
                    return;
                }
            }
        }
        NativeMemory.AlignedFree(p);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var stack in _free.Values)
                while (stack.TryPop(out var p)) NativeMemory.AlignedFree((void*)p);
            _free.Clear();
            _cachedBytes = 0;
        }
    }
}
