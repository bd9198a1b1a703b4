using System.Runtime.InteropServices;
using System.Text;

namespace DyDiT.Eval.Engine.Backends.Cuda;

/// <summary>
/// Our own binding of the few CUDA driver and cuBLAS entry points we call, resolved at run time with
/// <see cref="NativeLibrary"/> (function pointers, no DllImport: the assembly's import resolver belongs to OpenBLAS).
/// cuBLAS is looked up as <c>libcublas.so.13</c>, then <c>.so.12</c> (ILGPU.Algorithms' binding stops at 12).
/// </summary>
internal static unsafe class CudaNative
{
    public static readonly string[] DriverNames = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"];
    public static readonly string[] CublasNames = ["libcublas.so.13", "libcublas.so.12", "cublas64_13.dll", "cublas64_12.dll"];

    /// <summary>Loads the first library of <paramref name="names"/> found; null (and the names tried) when none is.</summary>
    public static IntPtr TryLoad(IReadOnlyList<string> names, out string? loaded)
    {
        foreach (var name in names)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
            {
                loaded = name;
                return handle;
            }
        }
        loaded = null;
        return IntPtr.Zero;
    }

    public static IntPtr Export(IntPtr library, string name, string libraryName)
        => NativeLibrary.TryGetExport(library, name, out var p) ? p
            : throw new DeviceUnavailableException($"{libraryName} has no entry point {name}: the library is older than this program needs (CUDA 12 or 13)");
}

/// <summary>The CUDA driver API calls <c>doctor</c> and device selection use.</summary>
internal sealed unsafe class CudaDriver
{
    private readonly delegate* unmanaged<uint, int> _init;
    private readonly delegate* unmanaged<int*, int> _driverGetVersion;
    private readonly delegate* unmanaged<int*, int> _deviceGetCount;
    private readonly delegate* unmanaged<int*, int, int> _deviceGet;
    private readonly delegate* unmanaged<byte*, int, int, int> _deviceGetName;
    private readonly delegate* unmanaged<nuint*, int, int> _deviceTotalMem;
    private readonly delegate* unmanaged<int*, int, int, int> _deviceGetAttribute;

    private CudaDriver(IntPtr lib, string name)
    {
        _init = (delegate* unmanaged<uint, int>)CudaNative.Export(lib, "cuInit", name);
        _driverGetVersion = (delegate* unmanaged<int*, int>)CudaNative.Export(lib, "cuDriverGetVersion", name);
        _deviceGetCount = (delegate* unmanaged<int*, int>)CudaNative.Export(lib, "cuDeviceGetCount", name);
        _deviceGet = (delegate* unmanaged<int*, int, int>)CudaNative.Export(lib, "cuDeviceGet", name);
        _deviceGetName = (delegate* unmanaged<byte*, int, int, int>)CudaNative.Export(lib, "cuDeviceGetName", name);
        _deviceTotalMem = (delegate* unmanaged<nuint*, int, int>)CudaNative.Export(lib, "cuDeviceTotalMem_v2", name);
        _deviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)CudaNative.Export(lib, "cuDeviceGetAttribute", name);
    }

    public static CudaDriver? TryLoad(out string? libraryName)
    {
        var lib = CudaNative.TryLoad(CudaNative.DriverNames, out libraryName);
        return lib == IntPtr.Zero ? null : new CudaDriver(lib, libraryName!);
    }

    public int Init() => _init(0);

    public int DriverVersion()
    {
        int v;
        Check(_driverGetVersion(&v), "cuDriverGetVersion");
        return v;
    }

    public int DeviceCount()
    {
        int n;
        Check(_deviceGetCount(&n), "cuDeviceGetCount");
        return n;
    }

    public GpuInfo Device(int ordinal)
    {
        int dev, major, minor;
        Check(_deviceGet(&dev, ordinal), "cuDeviceGet");
        var name = stackalloc byte[256];
        Check(_deviceGetName(name, 256, dev), "cuDeviceGetName");
        nuint bytes;
        Check(_deviceTotalMem(&bytes, dev), "cuDeviceTotalMem");
        Check(_deviceGetAttribute(&major, 75, dev), "cuDeviceGetAttribute"); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        Check(_deviceGetAttribute(&minor, 76, dev), "cuDeviceGetAttribute"); // ..._MINOR
        int len = 0;
        while (len < 256 && name[len] != 0) len++;
        return new GpuInfo(Encoding.UTF8.GetString(name, len), (long)bytes, major, minor);
    }

    private static void Check(int status, string call)
    {
        if (status != 0) throw new DeviceUnavailableException($"the CUDA driver failed in {call} (CUresult {status})");
    }
}

/// <summary>One GPU as the driver describes it.</summary>
public readonly record struct GpuInfo(string Name, long MemoryBytes, int Major, int Minor)
{
    /// <summary>e.g. "sm_90".</summary>
    public string Architecture => $"sm_{Major}{Minor}";
}

/// <summary>What this machine offers for <c>--device cuda</c>: the GPUs, driver and cuBLAS, or what is missing.</summary>
public sealed record CudaProbe(IReadOnlyList<GpuInfo> Devices, int DriverVersion, string? CublasLibrary, string? CublasVersion, string? Problem)
{
    private static readonly Lazy<CudaProbe> Cached = new(Probe);

    /// <summary>Probes once per process (cheap when there is no driver).</summary>
    public static CudaProbe Run() => Cached.Value;

    /// <summary>"13.0" for a driver version of 13000.</summary>
    public string DriverText => DriverVersion == 0 ? "none" : $"{DriverVersion / 1000}.{DriverVersion % 1000 / 10}";

    private static CudaProbe Probe()
    {
        var driver = CudaDriver.TryLoad(out _);
        if (driver == null)
            return new([], 0, null, null,
                "no NVIDIA driver: libcuda.so.1 was not found. A GPU host needs the NVIDIA driver (525 or newer; `nvidia-smi` must work), " +
                "and in a container the GPU passed through (docker run --gpus all). Use --device cpu to compute on the CPU.");
        int init = driver.Init();
        if (init != 0)
            return new([], 0, null, null,
                $"the NVIDIA driver did not initialise (cuInit returned {init}{(init == 100 ? ": no CUDA-capable device" : "")}); check `nvidia-smi`. Use --device cpu to compute on the CPU.");
        int version = driver.DriverVersion();
        int count = driver.DeviceCount();
        var devices = Enumerable.Range(0, count).Select(driver.Device).ToList();
        if (count == 0)
            return new(devices, version, null, null, "the NVIDIA driver sees no GPU. Use --device cpu to compute on the CPU.");
        var cublas = CudaNative.TryLoad(CudaNative.CublasNames, out var cublasName);
        if (cublas == IntPtr.Zero)
            return new(devices, version, null, null,
                "cuBLAS was not found (libcublas.so.13 or libcublas.so.12): install the CUDA toolkit's cuBLAS " +
                "(Debian/Ubuntu: apt install libcublas-13-0, or libcublas-12-x; pip: nvidia-cublas-cu12) and put its lib folder on LD_LIBRARY_PATH.");
        string? cublasVersion = null;
        try
        {
            cublasVersion = Cublas.Version(cublas, cublasName!);
        }
        catch (DeviceUnavailableException e)
        {
            return new(devices, version, cublasName, null, e.Message);
        }
        return new(devices, version, cublasName, cublasVersion, null);
    }
}
