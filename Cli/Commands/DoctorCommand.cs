using System.CommandLine;
using System.Globalization;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Backends.Cuda;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval doctor [--device D]</c>: is this machine ready to compute? The CPU backend, then the GPUs (name, memory,
/// architecture, driver, cuBLAS) or what is missing for them. Exit 3 with the fix when the device asked for is not usable;
/// without <c>--device</c> a machine without GPUs is fine (the GPU section says why there are none).
/// </summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var threads = new Option<int>("--threads") { Description = "CPU threads to use (default: all cores)" };
        var device = new Option<string?>("--device")
        {
            Description = $"Check that this device is usable (exit 3 with what is missing when not): {Backends.DeviceHelp}",
        };
        var command = new Command("doctor",
            "Check the compute environment (OpenBLAS and threads; NVIDIA GPUs, driver and cuBLAS) and say how to fix what is missing.")
        {
            threads, device,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string? asked = parse.GetValue(device);
            DeviceSpec? spec = null;
            if (asked != null)
            {
                try
                {
                    spec = DeviceSpec.Parse(asked);
                }
                catch (ArgumentException e)
                {
                    throw new UsageException(e.Message);
                }
            }
            using (var cpu = Backends.Create("cpu", parse.GetValue(threads) is > 0 and var n ? n : null))
                Console.WriteLine($"cpu backend: OpenBLAS ({CpuBackend.BlasCore} kernels), {cpu.Threads} thread(s); numerics cpu-fp32-{CpuBackend.KernelFamily} (the same bytes for any thread count)");
            Console.WriteLine($"cores: {Environment.ProcessorCount}, .NET {Environment.Version}");

            var probe = CudaProbe.Run();
            Console.WriteLine("gpu:");
            foreach (var (gpu, i) in probe.Devices.Select((g, i) => (g, i)))
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  cuda:{i}  {gpu.Name}  {gpu.MemoryBytes / (double)(1L << 30):F1} GiB  {gpu.Architecture}"));
            if (probe.DriverVersion != 0) Console.WriteLine($"  NVIDIA driver: supports CUDA {probe.DriverText}");
            if (probe.CublasLibrary != null) Console.WriteLine($"  cuBLAS: {probe.CublasLibrary}{(probe.CublasVersion != null ? " " + probe.CublasVersion : "")}");
            if (probe.Problem != null) Console.WriteLine($"  not usable: {probe.Problem}");

            if (spec is { Kind: DeviceKind.Cuda } s)
            {
                if (probe.Problem != null) throw new DeviceUnavailableException(probe.Problem);
                if (s.Ordinal >= probe.Devices.Count)
                    throw new DeviceUnavailableException($"{s} does not exist: this machine has {probe.Devices.Count} NVIDIA GPU(s)");
                using var backend = Backends.Create(s.ToString());
                Console.WriteLine($"{s}: {SmokeTest(backend)}");
            }
            else if (spec is { Kind: DeviceKind.IlgpuCpu })
            {
                using var backend = Backends.Create("ilgpu-cpu", parse.GetValue(threads) is > 0 and var t ? t : null);
                Console.WriteLine($"ilgpu-cpu: {SmokeTest(backend)} ({backend.Threads} thread(s))");
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>
    /// Runs a kernel and a matrix product on the backend and checks the numbers against values worked out by hand, so
    /// that "ready" means the device compiled and ran our code, not only that a driver answered.
    /// </summary>
    private static string SmokeTest(Engine.Tensors.IBackend backend)
    {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; then + itself (an element-wise kernel) = 2×
        using var a = backend.FromHost([1f, 2f, 3f, 4f], 2, 2);
        using var b = backend.FromHost([5f, 6f, 7f, 8f], 2, 2);
        using var c = backend.Zeros(2, 2);
        backend.Gemm(a, false, b, false, c);
        backend.Add(c, c, c);
        var got = c.ToArray();
        float[] expected = [38f, 44f, 86f, 100f];
        if (!got.AsSpan().SequenceEqual(expected))
            throw new DeviceUnavailableException($"{backend.Name} computed [{string.Join(", ", got)}] for a 2×2 product where [{string.Join(", ", expected)}] was expected: the device or its libraries are broken");
        return "ready (a kernel and a matrix product ran and gave the right numbers)";
    }
}
