using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

/// <summary>
/// The CPU backend: GEMM and LAPACK through OpenBLAS, element-wise kernels through TensorPrimitives.
/// The kernels themselves live one family per file (CpuBackend.Gemm.cs, CpuBackend.Elementwise.cs, ...).
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    /// <param name="threads">Threads our kernels split their work over (null or 0 = all cores). The split itself is a function of
    /// the shapes only, so results are the same bits for any thread count.</param>
    /// <exception cref="OpenBlasMissingException">libopenblas is not installed.</exception>
    public CpuBackend(int? threads = null)
    {
        Threads = threads is > 0 ? threads.Value : Environment.ProcessorCount;
        OpenBlas.EnsureLoaded();
    }

    // Freed activation-sized blocks kept for reuse (see CpuMemoryPool): up to 4 GiB.
    private readonly CpuMemoryPool _pool = new(4L << 30);

    public string Name => "cpu";

    public int Threads { get; }

    /// <summary>OpenBLAS's name for the kernels it picked on this CPU (e.g. "SkylakeX").</summary>
    public static string BlasCore => OpenBlas.CoreName;

    /// <summary>
    /// What decides this backend's bits on this machine besides the program: OpenBLAS's kernel set (its core name) and the
    /// vector width our element-wise kernels run at (TensorPrimitives uses 512-, 256- or 128-bit code paths whose exp,
    /// tanh and sums round differently). Two machines with the same family compute the same bytes, e.g.
    /// <c>haswell-v512</c> (a Zen 4) or <c>haswell-v256</c> (a Zen 1, or a Zen 4 with AVX-512 turned off).
    /// </summary>
    public static string KernelFamily => Family.Value;

    private static readonly Lazy<string> Family = new(() =>
    {
        OpenBlas.EnsureLoaded();
        var core = new string(OpenBlas.CoreName.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        string vectors = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "v512"
            : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "v256"
            : System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? "v128" : "scalar";
        return (core.Length == 0 ? "unknown" : core) + "-" + vectors;
    });

    public Tensor Zeros(params int[] shape)
    {
        var length = ShapeMath.ElementCount(shape);
        return new Tensor(this, new CpuStorage(length, zero: true, _pool), (int[])shape.Clone());
    }

    public Tensor Empty(params int[] shape)
    {
        var length = ShapeMath.ElementCount(shape);
        return new Tensor(this, new CpuStorage(length, zero: false, _pool), (int[])shape.Clone());
    }

    public Tensor FromHost(ReadOnlySpan<float> values, params int[] shape)
    {
        var length = ShapeMath.ElementCount(shape);
        if (length != values.Length)
            throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(", ", shape)}] ({length} elements)");
        var t = new Tensor(this, new CpuStorage(length, zero: false, _pool), (int[])shape.Clone());
        values.CopyTo(Span(t));
        return t;
    }

    public void Upload(ReadOnlySpan<float> values, Tensor destination)
    {
        if (values.Length != destination.Length)
            throw new ArgumentException($"{values.Length} values for a tensor of {destination.Length}");
        values.CopyTo(Span(destination));
    }

    public void Download(Tensor source, Span<float> destination)
    {
        if (destination.Length != source.Length)
            throw new ArgumentException($"destination holds {destination.Length} values, tensor has {source.Length}");
        Span(source).CopyTo(destination);
    }

    /// <summary>Frees the cached blocks; tensors still alive return their memory to the system when disposed.</summary>
    public void Dispose() => _pool.Dispose();

    /// <summary>The tensor's memory. Kernels of this backend only; model code never sees it.</summary>
    internal static float* Pointer(Tensor t) => t.Storage is CpuStorage s
        ? s.Pointer
        : throw new ArgumentException($"{t} does not live on the CPU backend");

    internal static Span<float> Span(Tensor t) => new(Pointer(t), checked((int)t.Length));
}
