using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Backends.Cuda;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends;

/// <summary>How matrix products are computed on a GPU: plain fp32, TF32 tensor cores, or bf16 tensor cores (fp32 accumulate).</summary>
public enum Precision
{
    Fp32,
    Tf32,
    Bf16,
}

/// <summary>The one place a backend is constructed (the CLI, workers, benchmarks and tests all come here).</summary>
public static class Backends
{
    /// <summary>Device names <see cref="Create"/> accepts, for help texts.</summary>
    public const string DeviceHelp = "cpu (OpenBLAS), cuda or cuda:N (NVIDIA GPU N), ilgpu-cpu (the CUDA backend's kernels on ILGPU's CPU accelerator, for tests)";

    /// <summary>
    /// Makes the backend named by <paramref name="device"/>: <c>cpu</c>, <c>cuda</c> (= <c>cuda:0</c>), <c>cuda:N</c> or
    /// <c>ilgpu-cpu</c>. <paramref name="threads"/> (null or 0 = all cores) applies to the CPU backend and to ILGPU's CPU
    /// accelerator. The CPU and ilgpu-cpu backends compute in fp32 only.
    /// </summary>
    /// <exception cref="ArgumentException">the device or precision is not understood (a usage error).</exception>
    /// <exception cref="DeviceUnavailableException">the device is understood but not usable here (missing driver, library or GPU).</exception>
    public static IBackend Create(string device, int? threads = null, Precision precision = Precision.Fp32)
    {
        var spec = DeviceSpec.Parse(device);
        if (spec.Kind != DeviceKind.Cuda && precision != Precision.Fp32)
            throw new ArgumentException($"device '{device}' computes in fp32 only; --precision {PrecisionName(precision)} needs a cuda device");
        return spec.Kind switch
        {
            DeviceKind.Cpu => new CpuBackend(threads),
            DeviceKind.IlgpuCpu => CudaBackend.CreateCpuAccelerator(threads),
            _ => CudaBackend.CreateCuda(spec.Ordinal, precision),
        };
    }

    /// <summary>Parses "fp32", "tf32" or "bf16" (case-insensitive).</summary>
    public static Precision ParsePrecision(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" => Precision.Fp32,
        "tf32" => Precision.Tf32,
        "bf16" or "bfloat16" => Precision.Bf16,
        _ => throw new ArgumentException($"unknown precision '{text}' (use fp32, tf32 or bf16)"),
    };

    public static string PrecisionName(Precision p) => p.ToString().ToLowerInvariant();
}

public enum DeviceKind
{
    Cpu,
    Cuda,
    IlgpuCpu,
}

/// <summary>A parsed device name.</summary>
public readonly record struct DeviceSpec(DeviceKind Kind, int Ordinal)
{
    public static DeviceSpec Parse(string device)
    {
        var d = (device ?? "").Trim().ToLowerInvariant();
        if (d == "cpu") return new(DeviceKind.Cpu, 0);
        if (d == "ilgpu-cpu") return new(DeviceKind.IlgpuCpu, 0);
        if (d == "cuda" || d == "gpu") return new(DeviceKind.Cuda, 0);
        if (d.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(d.AsSpan(5), System.Globalization.NumberStyles.None, null, out int n))
            return new(DeviceKind.Cuda, n);
        throw new ArgumentException($"unknown device '{device}' (use {Backends.DeviceHelp})");
    }

    public override string ToString() => Kind switch
    {
        DeviceKind.Cpu => "cpu",
        DeviceKind.IlgpuCpu => "ilgpu-cpu",
        _ => $"cuda:{Ordinal}",
    };
}

/// <summary>A device that was named correctly but cannot be used on this machine; the message says what is missing and how to get it.</summary>
public sealed class DeviceUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
