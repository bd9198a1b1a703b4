using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Bench;

/// <summary>The backend the benchmarks run on (<c>--device</c>, <c>--precision</c>), made by <see cref="Backends.Create"/>.</summary>
internal static class BenchDevice
{
    public static string Device { get; set; } = "cpu";

    public static Precision Precision { get; set; } = Precision.Fp32;

    public static IBackend Create(int? threads = null) => Backends.Create(Device, threads, Precision);
}
