using System.CommandLine;
using DyDiT.Eval.Engine.Backends.Cpu;

namespace DyDiT.Eval.Cli.Commands;

/// <summary><c>dydit-eval doctor</c>: is this machine ready to compute? Exit 3 with the fix when it is not.</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var threads = new Option<int>("--threads") { Description = "CPU threads to use (default: all cores)" };
        var command = new Command("doctor", "Check the compute environment (OpenBLAS, threads) and say how to fix what is missing.")
        {
            threads,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            using var cpu = new CpuBackend(parse.GetValue(threads));
            Console.WriteLine($"cpu backend: OpenBLAS ({CpuBackend.BlasCore} kernels), {cpu.Threads} thread(s)");
            Console.WriteLine($"cores: {Environment.ProcessorCount}, .NET {Environment.Version}");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
