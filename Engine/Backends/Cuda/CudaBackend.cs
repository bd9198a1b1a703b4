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

    private CudaBackend(Context context, Accelerator accelerator, string name, Precision precision, int threads, Func<CudaBackend, IDeviceGemm> gemm)
    {
        _context = context;
        Accelerator = accelerator;
        Name = name;
        Precision = precision;
        Threads = threads;
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
        return new Tensor(this, new DeviceStorage(Accelerator, length), (int[])shape.Clone());
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

    internal static void SameShape(Tensor x, Tensor y)
    {
        if (!x.Shape.SequenceEqual(y.Shape)) throw new ArgumentException($"shapes differ: {x} vs {y}");
    }

    internal static void SameShape(Tensor x, Tensor y, Tensor z)
    {
        SameShape(x, y);
        SameShape(x, z);
    }

    /// <summary>Element count as a kernel extent (kernels index with 32-bit ints).</summary>
    internal static int Extent(long length) => length <= int.MaxValue
        ? (int)length
        : throw new ArgumentException($"{length} elements exceed one kernel launch (2^31 − 1); use smaller batches");
}

/// <summary>Device memory behind a tensor.</summary>
internal sealed class DeviceStorage : TensorStorage
{
    public DeviceStorage(Accelerator accelerator, long length) : base(length)
    {
        Buffer = accelerator.Allocate1D<float>(Math.Max(1, length));
    }

    public MemoryBuffer1D<float, Stride1D.Dense> Buffer { get; }

    protected override void Free() => Buffer.Dispose();
}
