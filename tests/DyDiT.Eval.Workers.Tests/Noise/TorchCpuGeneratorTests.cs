using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Noise;
using Xunit;

namespace DyDiT.Eval.Workers.Tests.Noise;

/// <summary>Bit-exact checks of the torch CPU generator against <c>fixtures/rng</c> (see rng.json for each call).</summary>
public sealed class TorchCpuGeneratorTests
{
    public static TheoryData<string, ulong> Cases()
    {
        var data = new TheoryData<string, ulong>();
        foreach (var file in new[] { "rng_vectorized.npz", "rng_scalar.npz" })
            foreach (var seed in new ulong[] { 0, 1, 42 })
                data.Add(file, seed);
        return data;
    }

    private static TorchCpuKernel KernelOf(string file) => file == "rng_scalar.npz" ? TorchCpuKernel.Default : TorchCpuKernel.Avx2;

    private static int[] Ints(NpyArray a) => a.Shape.Select(d => (int)d).ToArray();

    private static void AssertBitExact(NpzArchive npz, string name, float[] actual)
    {
        var expected = MemoryMarshal.Cast<byte, uint>(npz[name].ReadAllBytes()).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        var got = MemoryMarshal.Cast<float, uint>(actual).ToArray();
        int bad = 0, first = -1;
        for (int i = 0; i < got.Length; i++)
            if (got[i] != expected[i]) { bad++; if (first < 0) first = i; }
        Assert.True(bad == 0, $"{name}: {bad} of {got.Length} values differ, first at {first}: got {(first < 0 ? 0 : BitConverter.UInt32BitsToSingle(got[first])):R} want {(first < 0 ? 0 : BitConverter.UInt32BitsToSingle(expected[first])):R}");
    }

    private static void AssertExact(NpzArchive npz, string name, long[] actual)
    {
        var expected = MemoryMarshal.Cast<byte, long>(npz[name].ReadAllBytes()).ToArray();
        Assert.Equal(expected, actual);
    }

    private static float[] Randn(TorchCpuGenerator g, int n)
    {
        var r = new float[n];
        g.Randn(r);
        return r;
    }

    private static long[] Randint(TorchCpuGenerator g, long lo, long hi, int n)
    {
        var r = new long[n];
        g.Randint(lo, hi, r);
        return r;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RandnAndRandintMatchTorch(string file, ulong seed)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("rng", file));
        var kernel = KernelOf(file);
        int checkedArrays = 0;
        foreach (var a in npz.Arrays)
        {
            if (a.Name.StartsWith($"randn_s{seed}_", StringComparison.Ordinal))
            {
                var g = new TorchCpuGenerator(seed, kernel);
                AssertBitExact(npz, a.Name, Randn(g, (int)a.ElementCount));
                checkedArrays++;
            }
            else if (a.Name.StartsWith($"randint_s{seed}_", StringComparison.Ordinal))
            {
                var g = new TorchCpuGenerator(seed, kernel);
                AssertExact(npz, a.Name, Randint(g, 0, 1000, (int)a.ElementCount));
                checkedArrays++;
            }
        }
        Assert.Equal(14, checkedArrays);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MixedSequenceKeepsTheCachedNormalAcrossCalls(string file, ulong seed)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("rng", file));
        var g = new TorchCpuGenerator(seed, KernelOf(file));
        string p = $"seq_s{seed}_";
        AssertBitExact(npz, p + "0", Randn(g, 7));
        AssertBitExact(npz, p + "1", Randn(g, 15));
        AssertBitExact(npz, p + "2", Randn(g, 17));
        AssertExact(npz, p + "3", Randint(g, 0, 1000, 5));
        AssertBitExact(npz, p + "4", Randn(g, 1));
        AssertBitExact(npz, p + "5", Randn(g, 16));
        AssertExact(npz, p + "6", Randint(g, 0, 10, 3));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SampleDdpDrawOrder(string file, ulong seed)
    {
        using var npz = NpzArchive.Open(Fixtures.Path("rng", file));
        foreach (var (n, l) in new[] { (4, 32), (3, 8) })
        {
            var g = new TorchCpuGenerator(seed, KernelOf(file));
            string p = $"ddp_s{seed}_n{n}_L{l}_";
            AssertBitExact(npz, p + "z", Randn(g, n * 4 * l * l));
            AssertExact(npz, p + "y", Randint(g, 0, 1000, n));
            AssertBitExact(npz, p + "noise0", Randn(g, 2 * n * 4 * l * l));
            AssertBitExact(npz, p + "noise1", Randn(g, 2 * n * 4 * l * l));
        }
        var fresh = new TorchCpuGenerator(seed, KernelOf(file));
        AssertBitExact(npz, $"samplepy_s{seed}_z_without_init", Randn(fresh, 3 * 4 * 8 * 8));
    }

    [Fact]
    public void ManualSeedDropsTheCachedNormal()
    {
        var g = new TorchCpuGenerator(0);
        var first = Randn(g, 1);
        g.ManualSeed(0);
        Assert.Equal(first, Randn(g, 1));
        Assert.NotEqual(first, Randn(g, 1)); // now served from the cache
    }
}
