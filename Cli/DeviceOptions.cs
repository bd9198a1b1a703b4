using System.CommandLine;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Backends.Cuda;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Cli;

/// <summary>
/// The <c>--device</c> and <c>--precision</c> options of the verbs that compute, and turning them into a backend through
/// <see cref="Backends.Create"/> (the one place a backend is made): a device or precision that is not understood is a
/// usage error (exit 2), a device that is understood but not usable here is an environment error (exit 3).
/// </summary>
internal static class DeviceOptions
{
    /// <summary>Sampling's default, as the official sample_ddp.py runs (torch.backends.cuda.matmul.allow_tf32 = True).</summary>
    public const string SamplingPrecision = "tf32";

    /// <summary>Features' and evaluation's default: fp32, for parity with ADM's evaluator.</summary>
    public const string FeaturesPrecision = "fp32";

    public static Option<string> DeviceOption() => new("--device")
    {
        Description = $"Where to compute: {Backends.DeviceHelp} (default cpu)",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<string?> PrecisionOption(string gpuDefault) => new("--precision")
    {
        Description = $"Matrix products on a GPU: fp32, tf32 (tensor cores, 10-bit mantissa inputs) or bf16 (fp32 accumulate); " +
                      $"default {gpuDefault} on cuda, fp32 on cpu and ilgpu-cpu (the only precision they have)",
    };

    /// <summary>
    /// The precision to use on <paramref name="device"/>: the flag when given, else <paramref name="gpuDefault"/> on a
    /// cuda device and fp32 elsewhere. An unknown device or precision, or a precision other than fp32 on a CPU device, is a
    /// <see cref="UsageException"/>: verbs call this before reading any file, so a typo fails first.
    /// </summary>
    public static Precision Resolve(string device, string? precision, string gpuDefault)
    {
        try
        {
            var spec = DeviceSpec.Parse(device);
            if (string.IsNullOrWhiteSpace(precision))
                return spec.Kind == DeviceKind.Cuda ? Backends.ParsePrecision(gpuDefault) : Precision.Fp32;
            var p = Backends.ParsePrecision(precision);
            if (spec.Kind != DeviceKind.Cuda && p != Precision.Fp32)
                throw new ArgumentException($"device '{device}' computes in fp32 only; --precision {Backends.PrecisionName(p)} needs a cuda device");
            return p;
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>The backend for <c>--device</c>/<c>--precision</c>/<c>--threads</c>; see the class summary for the errors.</summary>
    public static IBackend Create(string device, int threads, string? precision, string gpuDefault)
    {
        var p = Resolve(device, precision, gpuDefault);
        try
        {
            return Backends.Create(device, threads > 0 ? threads : null, p);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>
    /// The devices <c>run</c> starts workers on when neither <c>--devices</c> nor <c>--workers</c> is given: every GPU
    /// <see cref="CudaProbe"/> finds usable, else one CPU worker.
    /// </summary>
    public static IReadOnlyList<string> DefaultDevices()
    {
        var probe = CudaProbe.Run();
        return probe.Problem == null && probe.Devices.Count > 0
            ? Enumerable.Range(0, probe.Devices.Count).Select(i => $"cuda:{i}").ToArray()
            : ["cpu"];
    }

    /// <summary>Parses <c>--devices cuda:0,cuda:1</c> (each name checked; a usage error when one is not understood).</summary>
    public static IReadOnlyList<string> ParseList(string list)
    {
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new UsageException("--devices needs at least one device (e.g. cuda:0,cuda:1 or cpu)");
        try
        {
            return names.Select(n => DeviceSpec.Parse(n).ToString()).ToArray();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
