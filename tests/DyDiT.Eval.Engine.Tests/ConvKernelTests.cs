using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Backends.Cuda;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>
/// Convolution-network kernels against naive float64 loops written from the definitions (PyTorch's NCHW semantics,
/// indexed here directly in NHWC): every output element is recomputed from its window, independently of im2col.
/// Every test runs on each backend of <see cref="TestBackends.Devices"/>.
/// </summary>
public sealed class ConvKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    /// <summary>Each case of <paramref name="cases"/> once per device, the device first.</summary>
    private static IEnumerable<object[]> OnEachDevice(params object[][] cases) =>
        from object[] device in TestBackends.Devices
        from c in cases
        select new[] { device[0] }.Concat(c).ToArray();

    // n, h, w, cin, cout, kh, kw, sh, sw, ph, pw, relu, bias — Inception's shapes in miniature, plus sizes that take
    // the many-rows path (several im2col chunks per thread) and the few-rows path (columns split over threads).
    public static IEnumerable<object[]> Conv2dCases => OnEachDevice(
        [2, 19, 17, 3, 32, 3, 3, 2, 2, 0, 0, true, true],      // Conv2d_1a_3x3: Cin = 3, stride 2
        [1, 12, 12, 16, 24, 3, 3, 1, 1, 1, 1, true, true],     // 3×3 pad 1
        [2, 9, 11, 8, 40, 1, 1, 1, 1, 0, 0, true, true],       // 1×1: sgemm straight on x
        [1, 9, 9, 12, 20, 1, 7, 1, 1, 0, 3, true, true],       // 1×7 pad (0, 3)
        [1, 9, 9, 12, 20, 7, 1, 1, 1, 3, 0, false, true],      // 7×1 pad (3, 0)
        [1, 10, 10, 6, 10, 5, 5, 1, 1, 2, 2, false, false],    // 5×5 pad 2, no bias
        [1, 8, 8, 24, 36, 1, 3, 1, 1, 0, 1, true, true],       // 1×3 (Mixed_7b/7c)
        [2, 17, 17, 10, 18, 3, 3, 2, 2, 0, 0, true, true],     // stride-2 reduction
        [3, 41, 37, 64, 40, 3, 3, 1, 1, 1, 1, true, true],     // M = 4551 rows, K = 576: several chunks
        [4, 40, 40, 96, 48, 1, 1, 1, 1, 0, 0, true, true]);    // 6400 rows, 1×1, several chunks

    // threads (of the CPU backend; the device backends have their own), kh, kw, cout
    public static IEnumerable<object[]> ChannelWindowCases => OnEachDevice(
        [1, 1, 1, 11],   // direct 1×1, one thread: BLAS keeps its own threading
        [2, 1, 1, 11],
        [2, 3, 3, 11],
        [2, 1, 7, 11],
        [2, 1, 1, 40],   // few rows: the columns are split over the threads (32 + 8)
        [2, 3, 3, 40],
        [1, 3, 3, 40]);

    public static IEnumerable<object[]> MaxPoolCases => OnEachDevice(
        [3, 2, 0], // Inception's reductions
        [3, 1, 1], // Mixed_7c's pool branch
        [2, 2, 1]);

    public static IEnumerable<object[]> AvgPoolCases => OnEachDevice(
        [3, 1, 1, false], // Inception's pool branches (TF: padding not counted)
        [3, 1, 1, true],
        [3, 2, 1, false],
        [3, 2, 1, true],
        [2, 2, 0, false]);

    public static IEnumerable<object[]> BiasActivationCases => OnEachDevice([true], [false]);

    private static float[] Random(int n, int seed, float lo = -1, float hi = 1)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(lo + rng.NextDouble() * (hi - lo));
        return v;
    }

    // y[n, oh, ow, co] = act(b[co] + Σ x[n, oh·sh+kh−ph, ow·sw+kw−pw, xOff+ci] · w[co, ci, kh, kw]), out-of-range = 0
    private static double[] NaiveConv(float[] x, int n, int h, int w, int cx, int xOff, float[] wt, int cout, int cin, int kh, int kw,
        float[]? bias, int sh, int sw, int ph, int pw, bool relu, out int oh, out int ow)
    {
        oh = (h + 2 * ph - kh) / sh + 1;
        ow = (w + 2 * pw - kw) / sw + 1;
        var y = new double[n * oh * ow * cout];
        for (int b = 0; b < n; b++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    for (int co = 0; co < cout; co++)
                    {
                        double s = bias?[co] ?? 0;
                        for (int ci = 0; ci < cin; ci++)
                            for (int u = 0; u < kh; u++)
                                for (int v = 0; v < kw; v++)
                                {
                                    int ih = i * sh - ph + u, iw = j * sw - pw + v;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                                    s += (double)x[((b * h + ih) * w + iw) * cx + xOff + ci] * wt[((co * cin + ci) * kh + u) * kw + v];
                                }
                        y[((b * oh + i) * ow + j) * cout + co] = relu ? Math.Max(0, s) : s;
                    }
        return y;
    }

    private static void AssertClose(double expected, float actual, double tolerance, string where)
    {
        Assert.True(Math.Abs(expected - actual) <= tolerance * Math.Max(1, Math.Abs(expected)), $"{where}: expected {expected}, got {actual}");
    }

    [Theory, MemberData(nameof(Conv2dCases))]
    public void Conv2dMatchesNaive(string device, int n, int h, int w, int cin, int cout, int kh, int kw, int sh, int sw, int ph, int pw, bool relu, bool withBias)
    {
        var backend = pool[device];
        var x = Random(n * h * w * cin, 1);
        var wt = Random(cout * cin * kh * kw, 2, -0.3f, 0.3f);
        var bias = withBias ? Random(cout, 3) : null;
        var expected = NaiveConv(x, n, h, w, cin, 0, wt, cout, cin, kh, kw, bias, sh, sw, ph, pw, relu, out int oh, out int ow);

        using var tx = backend.FromHost(x, n, h, w, cin);
        using var tw = backend.PackConv2dWeight(wt, cout, cin, kh, kw);
        using var tb = bias is null ? null : backend.FromHost(bias, cout);
        using var ty = backend.Zeros(n, oh, ow, cout);
        backend.Conv2d(tx, tw, tb, new Conv2dParams(sh, sw, ph, pw, relu), ty);
        var y = ty.ToArray();
        for (int i = 0; i < y.Length; i++) AssertClose(expected[i], y[i], 1e-5, $"element {i}");
    }

    [Theory, MemberData(nameof(ChannelWindowCases))]
    public void Conv2dReadsAndWritesChannelWindows(string device, int threads, int kh, int kw, int cout)
    {
        using var own = device == "cpu" ? TestBackends.Create("cpu", threads) : null;
        var backend = own ?? pool[device];
        int n = 2, h = 6, w = 7, cx = 30, xOff = 9, cin = 13, cy = cout + 29, yOff = 17;
        var x = Random(n * h * w * cx, 4);
        var wt = Random(cout * cin * kh * kw, 5);
        var bias = Random(cout, 6);
        var expected = NaiveConv(x, n, h, w, cx, xOff, wt, cout, cin, kh, kw, bias, 1, 1, kh / 2, kw / 2, true, out int oh, out int ow);

        var sentinel = new float[n * oh * ow * cy];
        Array.Fill(sentinel, 42f);
        using var tx = backend.FromHost(x, n, h, w, cx);
        using var tw = backend.PackConv2dWeight(wt, cout, cin, kh, kw);
        using var tb = backend.FromHost(bias, cout);
        using var ty = backend.FromHost(sentinel, n, oh, ow, cy);
        backend.Conv2d(tx, tw, tb, new Conv2dParams(1, 1, kh / 2, kw / 2, Relu: true), ty, sourceChannelOffset: xOff, destinationChannelOffset: yOff);
        var y = ty.ToArray();
        for (int p = 0; p < n * oh * ow; p++)
            for (int c = 0; c < cy; c++)
            {
                float got = y[p * cy + c];
                if (c < yOff || c >= yOff + cout) Assert.Equal(42f, got);
                else AssertClose(expected[p * cout + c - yOff], got, 1e-5, $"pixel {p} channel {c}");
            }
    }

    [Theory, MemberData(nameof(TestBackends.DeviceBackends), MemberType = typeof(TestBackends))]
    public void Conv2dInIm2ColChunksMatchesNaive(string device)
    {
        // 3 images of 9×8 outputs, K = 3·3·5 = 45: chunks of 20 rows (parts of images, the last one short), of one
        // image, and of two images (the last chunk holds one).
        var backend = (CudaBackend)pool[device];
        int n = 3, h = 9, w = 8, cin = 5, cout = 7;
        var x = Random(n * h * w * cin, 40);
        var wt = Random(cout * cin * 9, 41, -0.3f, 0.3f);
        var bias = Random(cout, 42);
        var expected = NaiveConv(x, n, h, w, cin, 0, wt, cout, cin, 3, 3, bias, 1, 1, 1, 1, true, out int oh, out int ow);
        using var tx = backend.FromHost(x, n, h, w, cin);
        using var tw = backend.PackConv2dWeight(wt, cout, cin, 3, 3);
        using var tb = backend.FromHost(bias, cout);
        using var ty = backend.Zeros(n, oh, ow, cout);
        long budget = backend.Im2ColBudget;
        try
        {
            foreach (long rows in new long[] { 20, oh * ow, 2 * oh * ow + 5 })
            {
                backend.Im2ColBudget = rows * cin * 9;
                backend.Conv2d(tx, tw, tb, new Conv2dParams(1, 1, 1, 1, Relu: true), ty);
                var y = ty.ToArray();
                for (int i = 0; i < y.Length; i++) AssertClose(expected[i], y[i], 1e-5, $"{rows} rows per chunk, element {i}");
                backend.Upload(new float[y.Length], ty);
            }
        }
        finally
        {
            backend.Im2ColBudget = budget;
        }
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void Conv2dRejectsMismatchedShapes(string device)
    {
        var backend = pool[device];
        using var tx = backend.Zeros(1, 5, 5, 4);
        using var tw = backend.PackConv2dWeight(new float[8 * 4 * 9], 8, 4, 3, 3);
        using var wrong = backend.Zeros(1, 5, 5, 8);
        Assert.Throws<ArgumentException>(() => backend.Conv2d(tx, tw, null, new Conv2dParams(), wrong)); // needs 3×3 output
        using var y = backend.Zeros(1, 3, 3, 8);
        Assert.Throws<ArgumentException>(() => backend.Conv2d(tx, tw, null, new Conv2dParams(), y, sourceChannelOffset: 1));
        Assert.Throws<ArgumentException>(() => backend.Conv2d(tx, tw, null, new Conv2dParams(), y, destinationChannelOffset: 1));
        using var bias = backend.Zeros(7);
        Assert.Throws<ArgumentException>(() => backend.Conv2d(tx, tw, bias, new Conv2dParams(), y));
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void PackConv2dWeightIsHwio(string device)
    {
        var backend = pool[device];
        // (Cout 2, Cin 3, KH 2, KW 1): value = 1000·co + 100·ci + 10·kh + kw
        var w = new float[2 * 3 * 2 * 1];
        for (int co = 0; co < 2; co++)
            for (int ci = 0; ci < 3; ci++)
                for (int kh = 0; kh < 2; kh++)
                    w[(co * 3 + ci) * 2 + kh] = 1000 * co + 100 * ci + 10 * kh;
        using var t = backend.PackConv2dWeight(w, 2, 3, 2, 1);
        Assert.Equal([2, 1, 3, 2], t.Shape.ToArray());
        var p = t.ToArray();
        for (int kh = 0; kh < 2; kh++)
            for (int ci = 0; ci < 3; ci++)
                for (int co = 0; co < 2; co++)
                    Assert.Equal(1000 * co + 100 * ci + 10 * kh, p[(kh * 3 + ci) * 2 + co]);
    }

    [Fact]
    public void BatchNormFoldingMatchesConvThenBatchNorm()
    {
        int n = 1, h = 7, w = 6, cin = 5, cout = 9;
        var x = Random(n * h * w * cin, 7);
        var wt = Random(cout * cin * 9, 8);
        var gamma = Random(cout, 9, 0.5f, 1.5f);
        var beta = Random(cout, 10);
        var mean = Random(cout, 11);
        var var = Random(cout, 12, 0.01f, 2f);
        const double eps = 0.001;
        var conv = NaiveConv(x, n, h, w, cin, 0, wt, cout, cin, 3, 3, null, 1, 1, 1, 1, false, out int oh, out int ow);
        var (fw, fb) = BatchNormFolding.FoldIntoConv(wt, cout, gamma, beta, mean, var, eps);
        var folded = NaiveConv(x, n, h, w, cin, 0, fw, cout, cin, 3, 3, fb, 1, 1, 1, 1, false, out _, out _);
        for (int i = 0; i < conv.Length; i++)
        {
            int c = i % cout;
            double bn = (conv[i] - mean[c]) / Math.Sqrt(var[c] + eps) * gamma[c] + beta[c];
            Assert.True(Math.Abs(bn - folded[i]) <= 1e-5 * Math.Max(1, Math.Abs(bn)), $"element {i}: {bn} vs {folded[i]}");
        }
        Assert.Equal(oh * ow * cout, conv.Length);
        Assert.Throws<ArgumentException>(() => BatchNormFolding.FoldIntoConv(wt, cout, gamma.AsSpan(1), beta, mean, var, eps));
    }

    [Theory, MemberData(nameof(MaxPoolCases))]
    public void MaxPoolMatchesNaive(string device, int k, int s, int p)
    {
        var backend = pool[device];
        int n = 2, h = 9, w = 8, c = 19;
        var x = Random(n * h * w * c, 13);
        int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        using var tx = backend.FromHost(x, n, h, w, c);
        using var ty = backend.Zeros(n, oh, ow, c + 5);
        backend.MaxPool2d(tx, k, s, p, ty, destinationChannelOffset: 3);
        var y = ty.ToArray();
        for (int b = 0; b < n; b++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    for (int ch = 0; ch < c + 5; ch++)
                    {
                        float got = y[((b * oh + i) * ow + j) * (c + 5) + ch];
                        if (ch < 3 || ch >= 3 + c)
                        {
                            Assert.Equal(0f, got);
                            continue;
                        }
                        float m = float.NegativeInfinity;
                        for (int u = 0; u < k; u++)
                            for (int v = 0; v < k; v++)
                            {
                                int ih = i * s - p + u, iw = j * s - p + v;
                                if (ih >= 0 && ih < h && iw >= 0 && iw < w) m = Math.Max(m, x[((b * h + ih) * w + iw) * c + ch - 3]);
                            }
                        Assert.Equal(m, got);
                    }
    }

    [Theory, MemberData(nameof(AvgPoolCases))]
    public void AvgPoolMatchesNaive(string device, int k, int s, int p, bool countIncludePad)
    {
        var backend = pool[device];
        int n = 2, h = 7, w = 8, c = 21;
        var x = Random(n * h * w * c, 14);
        int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        using var tx = backend.FromHost(x, n, h, w, c);
        using var ty = backend.Zeros(n, oh, ow, c);
        backend.AvgPool2d(tx, k, s, p, countIncludePad, ty);
        var y = ty.ToArray();
        for (int b = 0; b < n; b++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        double sum = 0;
                        int inside = 0, padded = 0;
                        for (int u = 0; u < k; u++)
                            for (int v = 0; v < k; v++)
                            {
                                int ih = i * s - p + u, iw = j * s - p + v;
                                // PyTorch counts positions inside the padded input [−p, H + p) when count_include_pad
                                if (ih < h + p && iw < w + p) padded++;
                                if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                                sum += x[((b * h + ih) * w + iw) * c + ch];
                                inside++;
                            }
                        double expected = sum / (countIncludePad ? padded : inside);
                        AssertClose(expected, y[((b * oh + i) * ow + j) * c + ch], 1e-6, $"({b},{i},{j},{ch})");
                    }
        // A corner of a 3×3 / stride 1 / pad 1 pool sees 4 pixels: TF divides by 4, PyTorch's default by 9.
        if (k == 3 && s == 1 && p == 1)
        {
            double corner = (x[0] + x[c] + x[w * c] + x[(w + 1) * c]) / (countIncludePad ? 9.0 : 4.0);
            AssertClose(corner, y[0], 1e-6, "corner");
        }
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void GlobalAvgPoolMatchesNaive(string device)
    {
        var backend = pool[device];
        int n = 3, h = 8, w = 8, c = 37;
        var x = Random(n * h * w * c, 15);
        using var tx = backend.FromHost(x, n, h, w, c);
        using var ty = backend.Zeros(n, c);
        backend.GlobalAvgPool(tx, ty);
        var y = ty.ToArray();
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
            {
                double s = 0;
                for (int p = 0; p < h * w; p++) s += x[(b * h * w + p) * c + ch];
                AssertClose(s / (h * w), y[b * c + ch], 1e-6, $"({b},{ch})");
            }
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void ConcatAndCopyChannels(string device)
    {
        var backend = pool[device];
        int n = 2, h = 3, w = 4;
        int[] widths = [5, 1, 7];
        var parts = widths.Select((c, i) => Random(n * h * w * c, 20 + i)).ToArray();
        var tensors = parts.Select((v, i) => backend.FromHost(v, n, h, w, widths[i])).ToList();
        using var cat = backend.Zeros(n, h, w, 13);
        backend.ConcatChannels(tensors, cat);
        var y = cat.ToArray();
        for (int p = 0; p < n * h * w; p++)
        {
            int off = 0;
            for (int i = 0; i < parts.Length; i++)
            {
                for (int c = 0; c < widths[i]; c++) Assert.Equal(parts[i][p * widths[i] + c], y[p * 13 + off + c]);
                off += widths[i];
            }
        }
        // channels 6..11 of the concatenation (the third part's first six) → channels 1..6 of a 9-wide tensor
        using var slice = backend.Zeros(n, h, w, 9);
        backend.CopyChannels(cat, 6, 6, slice, 1);
        var s = slice.ToArray();
        for (int p = 0; p < n * h * w; p++)
            for (int c = 0; c < 9; c++)
                Assert.Equal(c is >= 1 and < 7 ? parts[2][p * 7 + c - 1] : 0f, s[p * 9 + c]);
        using var wrong = backend.Zeros(n, h, w, 12);
        Assert.Throws<ArgumentException>(() => backend.ConcatChannels(tensors, wrong));
        foreach (var t in tensors) t.Dispose();
    }

    [Theory, MemberData(nameof(BiasActivationCases))]
    public void BiasActivationMatchesNaive(string device, bool relu)
    {
        var backend = pool[device];
        int rows = 300, cols = 33;
        var x = Random(rows * cols, 30);
        var b = Random(cols, 31);
        using var tx = backend.FromHost(x, 3, 100, cols);
        using var tb = backend.FromHost(b, cols);
        using var ty = backend.Zeros(3, 100, cols);
        backend.BiasActivation(tx, tb, relu, ty);
        var y = ty.ToArray();
        for (int i = 0; i < y.Length; i++)
        {
            float v = x[i] + b[i % cols];
            Assert.Equal(relu ? Math.Max(0f, v) : v, y[i]);
        }
    }
}
