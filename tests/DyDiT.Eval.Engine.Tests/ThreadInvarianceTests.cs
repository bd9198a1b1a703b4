using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>
/// The CPU kernels give the same bits for 1, 2, 3 and 8 threads (DESIGN.md: a sample does not depend on the thread
/// count). Shapes are large and odd enough that every kernel really splits its work: products cut into several row and
/// column tiles with ragged edges, convolutions in row chunks and in column slices, element-wise tails of a few values.
/// Each op's result at 1 thread is also checked against a float64 computation, so equal bits are also right bits.
/// </summary>
public sealed class ThreadInvarianceTests
{
    private static readonly int[] ThreadCounts = [1, 2, 3, 8];

    private static float[] Random(int seed, long n, float scale = 1f)
    {
        var r = new Random(seed);
        var v = new float[n];
        for (long i = 0; i < n; i++) v[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return v;
    }

    /// <summary>Runs <paramref name="op"/> on a fresh CPU backend per thread count; asserts one set of bits; returns it.</summary>
    private static float[] SameBitsForAllThreadCounts(string what, Func<IBackend, Tensor> op)
    {
        float[]? first = null;
        foreach (int threads in ThreadCounts)
        {
            using var backend = TestBackends.Create("cpu", threads);
            using var result = op(backend);
            var values = new float[result.Length];
            backend.Download(result, values);
            if (first == null) { first = values; continue; }
            for (long i = 0; i < values.Length; i++)
                if (BitConverter.SingleToInt32Bits(values[i]) != BitConverter.SingleToInt32Bits(first[i]))
                    Assert.Fail($"{what}: element {i} is {values[i]:R} with {threads} threads but {first[i]:R} with 1 thread");
        }
        return first!;
    }

    [Theory]
    [InlineData(517, 333, 129, false, false)]
    [InlineData(517, 333, 129, true, false)]
    [InlineData(517, 333, 129, false, true)]
    [InlineData(517, 333, 129, true, true)]
    [InlineData(64, 4608, 1152, false, true)]   // a DiT-XL/2 MLP product for a 64-token slice (column tiles only)
    [InlineData(2000, 70, 300, false, false)]   // tall and narrow (row tiles only)
    public void Gemm_same_bits_and_right_values(int m, int n, int k, bool ta, bool tb)
    {
        var a = Random(1, (long)m * k);
        var b = Random(2, (long)k * n);
        var c0 = Random(3, (long)m * n);
        var got = SameBitsForAllThreadCounts($"Gemm {m}x{n}x{k} ta={ta} tb={tb}", be =>
        {
            using var ta_ = be.FromHost(a, ta ? [k, m] : [m, k]);
            using var tb_ = be.FromHost(b, tb ? [n, k] : [k, n]);
            var c = be.FromHost(c0, m, n);
            be.Gemm(ta_, ta, tb_, tb, c, alpha: 0.5f, beta: 0.25f);
            return c;
        });
        Assert.True(GemmTiles.Of(m, n, k).Count > 1, "the shape must be cut into several tiles to test the cut");
        for (int i = 0; i < m; i += 7)
            for (int j = 0; j < n; j += 5)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(ta ? a[(long)p * m + i] : a[(long)i * k + p]) * (tb ? b[(long)j * k + p] : b[(long)p * n + j]);
                double want = 0.5 * s + 0.25 * c0[(long)i * n + j];
                Assert.True(Math.Abs(got[(long)i * n + j] - want) <= 1e-5 * Math.Sqrt(k) + 1e-5,
                    $"C[{i},{j}] = {got[(long)i * n + j]} but float64 gives {want}");
            }
    }

    [Fact]
    public void BatchedGemm_same_bits()
    {
        int batch = 5, m = 300, n = 129, k = 77;
        var a = Random(4, (long)batch * m * k);
        var b = Random(5, (long)batch * k * n);
        var got = SameBitsForAllThreadCounts("BatchedGemm", be =>
        {
            using var ta = be.FromHost(a, batch, m, k);
            using var tb = be.FromHost(b, batch, n, k);
            var c = be.Zeros(batch, m, n);
            be.BatchedGemm(batch, m, n, k, ta, (long)m * k, false, tb, (long)n * k, true, c, (long)m * n);
            return c;
        });
        // product 3, element (299, 128): an edge tile of the last row and column tiles
        double s = 0;
        for (int p = 0; p < k; p++) s += (double)a[3L * m * k + 299L * k + p] * b[3L * k * n + 128L * k + p];
        Assert.Equal(s, got[3L * m * n + 299L * n + 128], 1e-4);
    }

    [Theory]
    [InlineData(2, 37, 41, 19, 45, 3, 1, 1)]   // im2col in row chunks
    [InlineData(1, 9, 9, 64, 160, 3, 1, 1)]    // few rows: column slices
    [InlineData(2, 35, 35, 48, 64, 1, 1, 0)]   // 1×1: straight to the product
    [InlineData(1, 73, 73, 3, 32, 3, 2, 0)]    // stride 2, Inception's stem
    public void Conv2d_same_bits(int n, int h, int w, int cin, int cout, int kernel, int stride, int pad)
    {
        var x = Random(6, (long)n * h * w * cin);
        var weight = Random(7, (long)cout * cin * kernel * kernel, 0.2f);
        var bias = Random(8, cout);
        int oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1;
        var got = SameBitsForAllThreadCounts($"Conv2d {kernel}x{kernel} {cin}->{cout} on {h}x{w}", be =>
        {
            using var tx = be.FromHost(x, n, h, w, cin);
            using var pw = be.PackConv2dWeight(weight, cout, cin, kernel, kernel);
            using var tb = be.FromHost(bias, cout);
            var y = be.Empty(n, oh, ow, cout);
            be.Conv2d(tx, pw, tb, new Conv2dParams(stride, stride, pad, pad, Relu: true), y);
            return y;
        });
        // one output value in float64: the last image, last row and column, last channel
        int b_ = n - 1, oy = oh - 1, ox = ow - 1, co = cout - 1;
        double s = bias[co];
        for (int ci = 0; ci < cin; ci++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                {
                    int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    s += (double)x[(((long)b_ * h + iy) * w + ix) * cin + ci] * weight[((co * cin + ci) * kernel + ky) * kernel + kx];
                }
        Assert.Equal(Math.Max(0, s), got[(((long)b_ * oh + oy) * ow + ox) * cout + co], 1e-4);
    }

    [Fact]
    public void Elementwise_with_ragged_tails_same_bits()
    {
        long length = 3L * 32768 + 5; // a last piece shorter than one vector
        var x = Random(9, length, 4f);
        var got = SameBitsForAllThreadCounts("GeluTanh + Silu", be =>
        {
            using var tx = be.FromHost(x, (int)length);
            var y = be.Empty((int)length);
            be.GeluTanh(tx, y);
            be.Silu(y, y);
            return y;
        });
        double g = x[length - 1];
        g = 0.5 * g * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
        Assert.Equal(g / (1 + Math.Exp(-g)), got[length - 1], 1e-5);
    }

    [Theory]
    [InlineData(1, 1)]   // one (sample, head) pair
    [InlineData(2, 6)]
    public void Attention_and_token_kernels_same_bits(int batch, int heads)
    {
        int t = 130, c = 96;
        var qkv = Random(10, (long)batch * t * 3 * c);
        var shift = Random(11, (long)batch * c);
        var scale = Random(12, (long)batch * c);
        SameBitsForAllThreadCounts($"attention B={batch} H={heads}, LayerNorm, Modulate, GatedAdd", be =>
        {
            using var tq = be.FromHost(qkv, batch, t, 3 * c);
            using var ts = be.FromHost(shift, batch, c);
            using var tc = be.FromHost(scale, batch, c);
            using var a = be.Empty(batch, t, c);
            be.MultiHeadAttention(tq, heads, a);
            using var n = be.Empty(batch, t, c);
            be.LayerNorm(a, 1e-6f, n);
            be.Modulate(n, ts, tc, n);
            var y = be.Empty(batch, t, c);
            be.GatedAdd(a, ts, n, y);
            return y;
        });
    }

    [Fact]
    public void DyDiT_block_linears_same_bits()
    {
        int rows = 257, k = 384, blockSize = 64, outFeatures = 384;
        int[] blocks = [0, 1, 3, 4, 5];
        var x = Random(13, (long)rows * k);
        var w = Random(14, (long)outFeatures * k, 0.1f);
        var bias = Random(15, outFeatures);
        var xc = Random(16, (long)rows * blocks.Length * blockSize);
        SameBitsForAllThreadCounts("LinearRowBlocks + LinearColumnBlocks", be =>
        {
            using var tx = be.FromHost(x, rows, k);
            using var tw = be.FromHost(w, outFeatures, k);
            using var tb = be.FromHost(bias, outFeatures);
            using var rowsOut = be.Empty(rows, blocks.Length * blockSize);
            be.LinearRowBlocks(tx, tw, tb, blocks, blockSize, rowsOut);
            using var txc = be.FromHost(xc, rows, blocks.Length * blockSize);
            using var colsOut = be.Empty(rows, outFeatures);
            be.LinearColumnBlocks(txc, tw, tb, blocks, blockSize, colsOut);
            var y = be.Empty(rows, blocks.Length * blockSize + outFeatures);
            be.CopyChannels(rowsOut, 0, blocks.Length * blockSize, y, 0);
            be.CopyChannels(colsOut, 0, outFeatures, y, blocks.Length * blockSize);
            return y;
        });
    }
}
