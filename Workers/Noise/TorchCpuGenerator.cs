namespace DyDiT.Eval.Workers.Noise;

/// <summary>Which of ATen's CPU <c>randn</c> kernels to reproduce for float32 tensors of 16 or more values.</summary>
public enum TorchCpuKernel
{
    /// <summary>The AVX2 kernel (what x86-64 CPUs with AVX2 or AVX-512 run by default).</summary>
    Avx2,

    /// <summary>The portable kernel (<c>ATEN_CPU_CAPABILITY=default</c>); uses the C library's float <c>logf/cosf/sinf</c>.</summary>
    Default,
}

/// <summary>
/// PyTorch's CPU default generator (<c>torch.manual_seed</c>, <c>torch.randn</c>, <c>torch.randint</c>)
/// reproduced bit for bit for contiguous float32 / int64 outputs.
/// </summary>
/// <remarks>
/// Float32 uniforms take the low 24 bits of one 32-bit output. randn of 16+ values first fills every slot
/// with a uniform, then Box-Muller-transforms blocks of 16 (slot j pairs with slot j+8); when the count is
/// not a multiple of 16 the last 16 slots are refilled with fresh uniforms and transformed again. Smaller
/// randn calls go element by element through a float64 Box-Muller whose second value is cached in the
/// generator and survives across calls (until the next seed).
/// </remarks>
public sealed class TorchCpuGenerator
{
    private const double TwoPi = 2.0 * Math.PI;
    private const float TwoPiF = (float)(2.0 * Math.PI);

    private readonly Mt19937 _engine;
    private double? _cachedNormal;

    public TorchCpuGenerator(ulong seed, TorchCpuKernel kernel = TorchCpuKernel.Avx2)
    {
        _engine = new Mt19937(seed);
        Kernel = kernel;
    }

    public TorchCpuKernel Kernel { get; }

    /// <summary><c>torch.manual_seed(seed)</c>: re-seeds the engine and drops the cached normal.</summary>
    public void ManualSeed(ulong seed)
    {
        _engine.Seed(seed);
        _cachedNormal = null;
    }

    /// <summary>One 32-bit engine output.</summary>
    public uint Random() => _engine.NextUInt32();

    /// <summary>Two outputs, the first one in the high half.</summary>
    public ulong Random64()
    {
        ulong hi = _engine.NextUInt32();
        ulong lo = _engine.NextUInt32();
        return (hi << 32) | lo;
    }

    /// <summary>A float32 uniform in [0, 1) with 24 random bits.</summary>
    public float UniformFloat() => (Random() & 0xFFFFFFu) * (1.0f / (1 << 24));

    /// <summary>A float64 uniform in [0, 1) with 53 random bits.</summary>
    public double UniformDouble() => (Random64() & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    /// <summary>ATen's <c>normal_distribution&lt;double&gt;</c> with mean 0 and std 1 (uses and refills the cache).</summary>
    public double NormalDouble()
    {
        if (_cachedNormal is double cached)
        {
            _cachedNormal = null;
            return cached;
        }
        double u1 = UniformDouble();
        double u2 = UniformDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(1.0 - u2));
        double theta = TwoPi * u1;
        _cachedNormal = r * Math.Sin(theta);
        return r * Math.Cos(theta);
    }

    /// <summary><c>torch.randn(shape)</c> (float32, contiguous) for a shape of <c>destination.Length</c> values.</summary>
    public void Randn(Span<float> destination)
    {
        int size = destination.Length;
        if (size < 16)
        {
            for (int i = 0; i < size; i++)
                destination[i] = (float)NormalDouble();
            return;
        }
        for (int i = 0; i < size; i++)
            destination[i] = UniformFloat();
        for (int i = 0; i + 16 <= size; i += 16)
            Transform16(destination.Slice(i, 16));
        if (size % 16 != 0)
        {
            var tail = destination.Slice(size - 16, 16);
            for (int i = 0; i < 16; i++)
                tail[i] = UniformFloat();
            Transform16(tail);
        }
    }

    /// <summary>
    /// <c>torch.randint(low, high, shape)</c> (int64) for a shape of <c>destination.Length</c> values:
    /// <c>random() % range + low</c>, or <c>random64()</c> when the range needs 33+ bits.
    /// </summary>
    public void Randint(long low, long high, Span<long> destination)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), $"randint needs low < high, got [{low}, {high})");
        ulong range = (ulong)(high - low);
        for (int i = 0; i < destination.Length; i++)
        {
            ulong r = range >= 1UL << 32 ? Random64() : Random();
            destination[i] = (long)(r % range + (ulong)low);
        }
    }

    private void Transform16(Span<float> d)
    {
        if (Kernel == TorchCpuKernel.Avx2)
        {
            for (int j = 0; j < 8; j++)
            {
                float u1 = 1f - d[j];
                float u2 = d[j + 8];
                float radius = MathF.Sqrt(-2f * CephesAvx2.Log(u1));
                float theta = TwoPiF * u2;
                CephesAvx2.SinCos(theta, out float sin, out float cos);
                // the kernel stores fma(n, std, mean) with std 1, mean 0
                d[j] = MathF.FusedMultiplyAdd(radius * cos, 1f, 0f);
                d[j + 8] = MathF.FusedMultiplyAdd(radius * sin, 1f, 0f);
            }
        }
        else
        {
            for (int j = 0; j < 8; j++)
            {
                float u1 = 1f - d[j];
                float u2 = d[j + 8];
                float radius = MathF.Sqrt(-2f * MathF.Log(u1));
                float theta = (float)(TwoPi * u2);
                d[j] = radius * MathF.Cos(theta) * 1f + 0f;
                d[j + 8] = radius * MathF.Sin(theta) * 1f + 0f;
            }
        }
    }
}
