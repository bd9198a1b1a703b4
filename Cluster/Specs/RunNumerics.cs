using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Backends.Cuda;

namespace DyDiT.Eval.Cluster.Specs;

/// <summary>
/// The numerics identity of a run (DESIGN.md: backend kind, precision, and what else changes bits: the CPU's kernel
/// family, the GPU's architecture): <c>cpu-fp32-haswell-v512</c>, <c>ilgpu-cpu-fp32</c>, <c>cuda-tf32-sm_90</c>. Shards
/// made under different numerics differ in their bytes, so it is part of the run id (<see cref="RunSpec.ComputeRunId"/>)
/// and a worker whose numerics differ from its run's refuses the run. The thread count is not part of it: the CPU
/// kernels give the same bits for any.
/// </summary>
public static class RunNumerics
{
    /// <summary>This machine's CPU backend: <c>cpu-fp32-</c> and its kernel family; the default of a spec and of a worker.</summary>
    public static string Cpu => "cpu-fp32-" + Engine.Backends.Cpu.CpuBackend.KernelFamily;

    /// <summary>
    /// What runs planned before the identity named the CPU's kernel family carry (their specs have no <c>numerics</c>):
    /// such a run's shards were made with thread-dependent kernels, so no worker of today matches it.
    /// </summary>
    public const string LegacyCpu = "cpu-fp32";

    /// <summary>
    /// The numerics of <paramref name="device"/> at <paramref name="precision"/>; for a cuda device the GPU's architecture
    /// comes from <see cref="CudaProbe"/>.
    /// </summary>
    /// <exception cref="ArgumentException">the device name is not understood, or a precision other than fp32 on a CPU device.</exception>
    /// <exception cref="DeviceUnavailableException">a cuda device that this machine does not have (no driver, no such GPU).</exception>
    public static string Of(string device, Precision precision)
    {
        var spec = DeviceSpec.Parse(device);
        if (spec.Kind != DeviceKind.Cuda)
        {
            if (precision != Precision.Fp32)
                throw new ArgumentException($"device '{device}' computes in fp32 only; --precision {Backends.PrecisionName(precision)} needs a cuda device");
            return spec.Kind == DeviceKind.Cpu ? Cpu : "ilgpu-cpu-fp32";
        }
        var probe = CudaProbe.Run();
        if (probe.Problem is { } problem) throw new DeviceUnavailableException(problem);
        if (spec.Ordinal >= probe.Devices.Count)
            throw new DeviceUnavailableException($"{spec} does not exist: this machine has {probe.Devices.Count} NVIDIA GPU(s)");
        return $"cuda-{Backends.PrecisionName(precision)}-{probe.Devices[spec.Ordinal].Architecture}";
    }
}
