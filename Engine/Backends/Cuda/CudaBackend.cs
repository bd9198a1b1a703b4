using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

/// <summary>
/// The GPU backend: tensors live in device memory, every op is an ILGPU kernel written in C# (one file per kernel family,
/// <c>CudaBackend.*.cs</c>, the kernels themselves in the matching <c>*Kernels</c> classes), matrix products go to cuBLAS
/// through our own binding (<see cref="CublasGemm"/>). The same kernels run on ILGPU's CPU accelerator as device
/// <c>ilgpu-cpu</c>, where the matrix products are the plain reference kernel <see cref="ReferenceGemm"/>: that is how
/// CI tests GPU code without a GPU.
/// Kernels are launched on the accelerator's default stream, in order; <see cref="Download"/> waits for them.
/// </summary>
public sealed partial class CudaBackend : IBackend
{
    private readonly Context _context;
    private readonly IDeviceGemm _gemm;
    private readonly object _scratchLock = new();
    private MemoryBuffer1D<int, Stride1D.Dense>? _intScratch;
    private readonly DeviceMemoryPool _pool;

    private CudaBackend(Context context, Accelerator accelerator, string name, Precision precision, int threads, Func<CudaBackend, IDeviceGemm> gemm)
    {
        _context = context;
        Accelerator = accelerator;
        Name = name;
        Precision = precision;
        Threads = threads;
        // freed buffers are kept for reuse up to a quarter of the device's memory (1 GiB on the CPU accelerator)
        _pool = new DeviceMemoryPool(accelerator, accelerator.AcceleratorType == AcceleratorType.Cuda ? accelerator.MemorySize / 4 : 1L << 30);
        _gemm = gemm(this);
    }

    /// <summary>A backend on NVIDIA GPU <paramref name="ordinal"/> with cuBLAS matrix products in <paramref name="precision"/>.</summary>
    /// <exception cref="DeviceUnavailableException">no driver, no such GPU, or no cuBLAS.</exception>
    public static CudaBackend CreateCuda(int ordinal, Precision precision)
    {
        var probe = CudaProbe.Run();
        if (probe.Problem is { } problem) throw new DeviceUnavailableException(problem);
        if (ordinal >= probe.Devices.Count)
            throw new DeviceUnavailableException($"cuda:{ordinal} does not exist: this machine has {probe.Devices.Count} NVIDIA GPU(s) ({string.Join(", ", probe.Devices.Select((d, i) => $"cuda:{i} {d.Name}"))})");
        Context? context = null;
        try
        {
            context = Context.Create(b => b.Cuda().Math(MathMode.Default).Optimize(OptimizationLevel.O2));
            var accelerator = context.GetCudaDevice(ordinal).CreateCudaAccelerator(context);
            var info = probe.Devices[ordinal];
            return new CudaBackend(context, accelerator, $"cuda:{ordinal}", precision, 1, b => new CublasGemm(b, precision));
        }
        catch (Exception e) when (e is not DeviceUnavailableException)
        {
            context?.Dispose();
            throw new DeviceUnavailableException($"cuda:{ordinal} could not be opened: {e.Message}", e);
        }
    }

    /// <summary>The same kernels on ILGPU's CPU accelerator (fp32 only; matrix products by the reference kernel).</summary>
    public static CudaBackend CreateCpuAccelerator(int? threads = null)
    {
        int n = threads is > 0 ? threads.Value : Environment.ProcessorCount;
        var context = Context.Create(b => b.CPU(new CPUDevice(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 4, numMultiprocessors: n)).Math(MathMode.Default));
        var accelerator = context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
        return new CudaBackend(context, accelerator, "ilgpu-cpu", Precision.Fp32, n, b => new ReferenceGemm(b));
    }

    /// <summary>"cuda:N" or "ilgpu-cpu".</summary>
    public string Name { get; }

    /// <summary>Threads of ILGPU's CPU accelerator; 1 on a GPU (the host thread that launches).</summary>
    public int Threads { get; }

    /// <summary>How matrix products are computed.</summary>
    public Precision Precision { get; }

    /// <summary>The ILGPU accelerator (kernels of this backend only).</summary>
    internal Accelerator Accelerator { get; }

    internal bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <summary>Name, memory and compute capability of the device, for <c>doctor</c> and run summaries.</summary>
    public string Describe() => IsCuda
        ? $"{Accelerator.Name}, {Accelerator.MemorySize / (1024.0 * 1024 * 1024):F1} GiB, SM {((CudaAccelerator)Accelerator).Architecture}"
        : $"ILGPU CPU accelerator, {Threads} thread(s)";

    public Tensor Zeros(params int[] shape)
    {
        var t = Empty(shape);
        Storage(t).Buffer.MemSetToZero(Accelerator.DefaultStream);
        return t;
    }

    public Tensor Empty(params int[] shape)
    {
        var length = ShapeMath.ElementCount(shape);
        return new Tensor(this, new DeviceStorage(_pool, length), (int[])shape.Clone());
    }

    public Tensor FromHost(ReadOnlySpan<float> values, params int[] shape)
    {
        var length = ShapeMath.ElementCount(shape);
        if (length != values.Length)
            throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(", ", shape)}] ({length} elements)");
        var t = Empty(shape);
        Upload(values, t);
        return t;
    }

    public void Upload(ReadOnlySpan<float> values, Tensor destination)
    {
        if (values.Length != destination.Length)
            throw new ArgumentException($"{values.Length} values for a tensor of {destination.Length}");
        if (values.Length == 0) return;
        Accelerator.Synchronize();
        View(destination).CopyFromCPU(values);
    }

    public void Download(Tensor source, Span<float> destination)
    {
        if (destination.Length != source.Length)
            throw new ArgumentException($"destination holds {destination.Length} values, tensor has {source.Length}");
        if (destination.Length == 0) return;
        Accelerator.Synchronize();
        View(source).CopyToCPU(destination);
    }

    /// <summary>Waits until every kernel launched so far has finished.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    public void Dispose()
    {
        Accelerator.Synchronize();
        _gemm.Dispose();
        _intScratch?.Dispose();
        _floatScratch?.Dispose();
        _pool.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }

    // ---- helpers for the kernel families ----

    internal static DeviceStorage Storage(Tensor t) => t.Storage as DeviceStorage
        ?? throw new ArgumentException($"{t} does not live on a CUDA/ILGPU backend");

    /// <summary>The tensor's elements on the device.</summary>
    internal ArrayView<float> View(Tensor t)
    {
        if (!ReferenceEquals(t.Backend, this)) throw new ArgumentException($"{t} belongs to another backend than {Name}");
        return Storage(t).Buffer.View.SubView(0, t.Length);
    }

    /// <summary>
    /// Uploads a small host list of ints (row indices, block lists) to a scratch buffer that stays valid until the next call
    /// of this method; callers launch their kernel right after.
    /// </summary>
    internal ArrayView<int> UploadInts(ReadOnlySpan<int> values)
    {
        lock (_scratchLock)
        {
            Accelerator.Synchronize(); // the previous user of the scratch buffer has finished
            if (_intScratch == null || _intScratch.Length < Math.Max(1, values.Length))
            {
                _intScratch?.Dispose();
        _floatScratch?.Dispose();
                _intScratch = Accelerator.Allocate1D<int>(Math.Max(1024, values.Length));
            }
            ArrayView<int> all = _intScratch.View;
            var view = all.SubView(0, Math.Max(1, values.Length));
            if (values.Length > 0) view.SubView(0, values.Length).CopyFromCPU(values);
            return view;
        }
    }

    /// <summary>The matrix-product engine (cuBLAS on a GPU, the reference kernel on ILGPU's CPU accelerator).</summary>
    internal IDeviceGemm GemmEngine => _gemm;

    /// <summary>A count as an int where an API takes one (a GEMM dimension): refused past 2^31 − 1.</summary>
    internal static int Extent(long length) => length <= int.MaxValue
        ? (int)length
        : throw new ArgumentException($"{length} elements exceed 2^31 − 1; use smaller batches");

    /// <summary>
    /// How to launch <paramref name="items"/> independent work items: on a GPU one thread each; on ILGPU's CPU accelerator,
    /// whose cost is per launched thread (group barriers between OS threads), a few threads per core, each looping over
    /// items with the launch's stride. Every kernel runs <c>for (i = thread; i &lt; work.Count; i += work.Stride)</c>, so an
    /// item's result never depends on which thread computed it.
    /// </summary>
    internal Work Plan(long items)
    {
        long threads = IsCuda ? Math.Min(items, 1L << 30) : Math.Min(items, 64L * Threads);
        return new Work(items, (int)Math.Max(1, threads));
    }
}

/// <summary>The extent of one launch: <see cref="Count"/> work items covered by <see cref="Stride"/> threads.</summary>
internal readonly record struct Work(long Count, int Stride)
{
    /// <summary>Threads to launch (the kernel's index extent).</summary>
    public int Threads => Stride;
}

/// <summary>Device memory behind a tensor; returned to the backend's pool when the last view is disposed.</summary>
internal sealed class DeviceStorage : TensorStorage
{
    private readonly DeviceMemoryPool _pool;

    public DeviceStorage(DeviceMemoryPool pool, long length) : base(length)
    {
        _pool = pool;
        Buffer = pool.Rent(length);
    }

    public MemoryBuffer1D<float, Stride1D.Dense> Buffer { get; }

    protected override void Free() => _pool.Return(Buffer);
}

/// <summary>
/// Freed device buffers kept for reuse, keyed by their exact length: a network allocates the same activation shapes step
/// after step, and a device allocation (and above all a free, which waits for the device) costs far more than a kernel.
/// Reuse is safe without waiting because every kernel runs in order on the backend's one stream: a buffer handed out again
/// is only written by kernels queued after those that last read it.
/// </summary>
internal sealed class DeviceMemoryPool(Accelerator accelerator, long maxCachedBytes) : IDisposable
{
    private readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> _free = [];
    private readonly Lock _lock = new();
    private long _cachedBytes;
    private bool _disposed;

    public MemoryBuffer1D<float, Stride1D.Dense> Rent(long length)
    {
        length = Math.Max(1, length);
        lock (_lock)
        {
            if (_free.TryGetValue(length, out var stack) && stack.TryPop(out var buffer))
            {
                _cachedBytes -= length * sizeof(float);
                return buffer;
            }
        }
        try
        {
            return accelerator.Allocate1D<float>(length);
        }
        catch (Exception) when (_cachedBytes > 0)
        {
            Trim(); // out of device memory: give the cached buffers back and try once more
            return accelerator.Allocate1D<float>(length);
        }
    }

    public void Return(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        lock (_lock)
        {
            if (!_disposed && _cachedBytes + buffer.Length * sizeof(float) <= maxCachedBytes)
            {
                if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new();
                stack.Push(buffer);
                _cachedBytes += buffer.Length * sizeof(float);
                return;
            }
        }
        buffer.Dispose();
    }

    private void Trim()
    {
        lock (_lock)
        {
            foreach (var stack in _free.Values)
                while (stack.TryPop(out var b)) b.Dispose();
            _free.Clear();
            _cachedBytes = 0;
        }
    }

    public void Dispose()
    {
        lock (_lock) _disposed = true;
        Trim();
    }
}
