using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>The SparseDiT kernels (attention with separate q / kv and a score bias, adaptive pooling, nearest resize, broadcast gated residual) against naive loops.</summary>
public sealed class SparseDitKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    private readonly BackendPool _pool = pool;

    private static float[] Random(int n, int seed, double amplitude = 1)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * amplitude);
        return v;
    }

    // q: (B, N, cq) at qOff, kv: (B, M, ckv) with K at kOff and V at vOff, bias (hb, N, M) or null → (B, N, C), in float64
    private static double[] ReferenceAttention(float[] q, int cq, int qOff, float[] kv, int ckv, int kOff, int vOff,
        float[]? bias, int hb, int b, int n, int m, int c, int heads)
    {
        int hd = c / heads;
        var y = new double[b * n * c];
        var s = new double[m];
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < n; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < m; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < hd; e++)
                            dot += (double)q[(bi * n + i) * cq + qOff + h * hd + e] * kv[(bi * m + j) * ckv + kOff + h * hd + e];
                        s[j] = dot / Math.Sqrt(hd) + (bias == null ? 0 : bias[((hb == 1 ? 0 : h) * n + i) * m + j]);
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < m; j++) sum += s[j] = Math.Exp(s[j] - max);
                    for (int e = 0; e < hd; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < m; j++) acc += s[j] / sum * kv[(bi * m + j) * ckv + vOff + h * hd + e];
                        y[(bi * n + i) * c + h * hd + e] = acc;
                    }
                }
        return y;
    }

    public static IEnumerable<object[]> CrossAttentionMatchesReferenceCases => DeviceCases.Cross(
        [2, 4, 16, 8, 2, 1], // pooled queries attend to a full grid (token merge)
        [2, 16, 4, 8, 2, 2], // full-grid queries attend to pooled tokens (recovery)
        [3, 9, 25, 12, 3, 2],
        [1, 1, 1, 4, 1, 1]);

    [Theory, MemberData(nameof(CrossAttentionMatchesReferenceCases))]
    public void CrossAttentionMatchesReference(string device, int b, int n, int m, int c, int heads, int threads)
    {
        // the pool's backends use 2 threads; other thread counts get a backend of their own
        using var own = threads == 2 || device.StartsWith("cuda", StringComparison.Ordinal) ? null : Backends.Backends.Create(device, threads);
        var backend = own ?? _pool[device];
        var q = Random(b * n * c, 1, amplitude: 2);
        var kv = Random(b * m * 2 * c, 2, amplitude: 2);
        var expected = ReferenceAttention(q, c, 0, kv, 2 * c, 0, c, null, 0, b, n, m, c, heads);
        using var tq = backend.FromHost(q, b, n, c);
        using var tkv = backend.FromHost(kv, b, m, 2 * c);
        using var ty = backend.Empty(b, n, c);
        backend.ScaledDotProductAttention(tq, 0, tkv, 0, c, heads, null, ty);
        Close.PerElement(expected, ty.ToArray(), 2e-6);
    }

    public static IEnumerable<object[]> SelfAttentionWithBiasMatchesReferenceCases => DeviceCases.Cross(
        [2, 16, 8, 2, true], // 'relat': one bias per head
        [2, 16, 8, 2, false], // 'sin': one bias for all heads
        [3, 7, 12, 3, true]);

    [Theory, MemberData(nameof(SelfAttentionWithBiasMatchesReferenceCases))]
    public void SelfAttentionWithBiasMatchesReference(string device, int b, int t, int c, int heads, bool perHead)
    {
        var backend = _pool[device];
        var qkv = Random(b * t * 3 * c, 3, amplitude: 2);
        int hb = perHead ? heads : 1;
        var bias = Random(hb * t * t, 4, amplitude: 3);
        var expected = ReferenceAttention(qkv, 3 * c, 0, qkv, 3 * c, c, 2 * c, bias, hb, b, t, t, c, heads);
        using var tqkv = backend.FromHost(qkv, b, t, 3 * c);
        using var tb = backend.FromHost(bias, hb, t, t);
        using var ty = backend.Empty(b, t, c);
        backend.ScaledDotProductAttention(tqkv, 0, tqkv, c, 2 * c, heads, tb, ty);
        Close.PerElement(expected, ty.ToArray(), 2e-6);

        // without a bias it is the packed self-attention kernel
        using var plain = backend.Empty(b, t, c);
        using var packed = backend.Empty(b, t, c);
        backend.ScaledDotProductAttention(tqkv, 0, tqkv, c, 2 * c, heads, null, plain);
        backend.MultiHeadAttention(tqkv, heads, packed);
        Close.PerElement(packed.ToArray().Select(v => (double)v).ToArray(), plain.ToArray(), 1e-6);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void AttentionShapesAreChecked(string device)
    {
        var backend = _pool[device];
        using var q = backend.Zeros(1, 4, 8);
        using var kv = backend.Zeros(1, 6, 16);
        using var y = backend.Zeros(1, 4, 8);
        using var badBias = backend.Zeros(2, 4, 4);
        Assert.Throws<ArgumentException>(() => backend.ScaledDotProductAttention(q, 0, kv, 0, 8, 3, null, y));     // heads
        Assert.Throws<ArgumentException>(() => backend.ScaledDotProductAttention(q, 4, kv, 0, 8, 2, null, y));     // q window
        Assert.Throws<ArgumentException>(() => backend.ScaledDotProductAttention(q, 0, kv, 0, 9, 2, null, y));     // v window
        Assert.Throws<ArgumentException>(() => backend.ScaledDotProductAttention(q, 0, kv, 0, 8, 2, badBias, y));  // bias (·, 4, 6) expected
    }

    public static IEnumerable<object[]> AdaptiveAvgPoolMatchesReferenceCases => DeviceCases.Cross(
        [4, 4, 2, 2],
        [4, 4, 3, 3], // overlapping bins
        [5, 7, 3, 2],
        [3, 3, 5, 5], // more outputs than inputs
        [16, 16, 8, 8],
        [4, 4, 1, 1]);

    [Theory, MemberData(nameof(AdaptiveAvgPoolMatchesReferenceCases))]
    public void AdaptiveAvgPoolMatchesReference(string device, int h, int w, int oh, int ow)
    {
        var backend = _pool[device];
        const int n = 2, c = 5;
        var x = Random(n * h * w * c, 5, amplitude: 4);
        var expected = new double[n * oh * ow * c];
        for (int img = 0; img < n; img++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    // PyTorch: start = floor(i·H/OH), end = ceil((i+1)·H/OH)
                    int h0 = (int)Math.Floor(i * (double)h / oh), h1 = (int)Math.Ceiling((i + 1) * (double)h / oh);
                    int w0 = (int)Math.Floor(j * (double)w / ow), w1 = (int)Math.Ceiling((j + 1) * (double)w / ow);
                    for (int k = 0; k < c; k++)
                    {
                        double sum = 0;
                        for (int yy = h0; yy < h1; yy++)
                            for (int xx = w0; xx < w1; xx++) sum += x[((img * h + yy) * w + xx) * c + k];
                        expected[((img * oh + i) * ow + j) * c + k] = sum / ((h1 - h0) * (w1 - w0));
                    }
                }
        using var tx = backend.FromHost(x, n, h, w, c);
        using var ty = backend.Empty(n, oh, ow, c);
        backend.AdaptiveAvgPool2d(tx, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-6);
    }

    public static IEnumerable<object[]> UpsampleNearestMatchesPyTorchIndexRuleCases => DeviceCases.Cross(
        [2, 2, 4, 4],
        [3, 3, 4, 4],
        [3, 5, 6, 10], // doubling
        [4, 4, 4, 4], // identity
        [5, 4, 3, 7], // down in one axis, up in the other
        [6, 6, 16, 16]);

    [Theory, MemberData(nameof(UpsampleNearestMatchesPyTorchIndexRuleCases))]
    public void UpsampleNearestMatchesPyTorchIndexRule(string device, int h, int w, int oh, int ow)
    {
        var backend = _pool[device];
        const int n = 2, c = 3;
        var x = Random(n * h * w * c, 6);
        // PyTorch: src = min(floor(dst · (float)(in/out)), in − 1), float32 arithmetic
        static int Src(int dst, int input, int output) => Math.Min((int)MathF.Floor(dst * ((float)input / output)), input - 1);
        var expected = new double[n * oh * ow * c];
        for (int img = 0; img < n; img++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    for (int k = 0; k < c; k++)
                        expected[((img * oh + i) * ow + j) * c + k] = x[((img * h + Src(i, h, oh)) * w + Src(j, w, ow)) * c + k];
        using var tx = backend.FromHost(x, n, h, w, c);
        using var ty = backend.Empty(n, oh, ow, c);
        backend.UpsampleNearest(tx, ty);
        Close.PerElement(expected, ty.ToArray(), 0);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void ResizeShapesAreChecked(string device)
    {
        var backend = _pool[device];
        using var x = backend.Zeros(2, 4, 4, 3);
        using var wrongChannels = backend.Zeros(2, 2, 2, 4);
        using var wrongBatch = backend.Zeros(1, 2, 2, 3);
        Assert.Throws<ArgumentException>(() => backend.AdaptiveAvgPool2d(x, wrongChannels));
        Assert.Throws<ArgumentException>(() => backend.UpsampleNearest(x, wrongBatch));
    }

    public static IEnumerable<object[]> GatedAddBroadcastMatchesReferenceCases => DeviceCases.Cross(
        [2, 16, 8],
        [3, 500, 256]); // large enough to run in parallel

    [Theory, MemberData(nameof(GatedAddBroadcastMatchesReferenceCases))]
    public void GatedAddBroadcastMatchesReference(string device, int b, int t, int c)
    {
        var backend = _pool[device];
        var x = Random(b * t * c, 7);
        var gate = Random(b * c, 8);
        var r = Random(b * c, 9);
        var expected = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int sample = i / (t * c), ch = i % c;
            expected[i] = x[i] + (double)gate[sample * c + ch] * r[sample * c + ch];
        }
        using var tx = backend.FromHost(x, b, t, c);
        using var tg = backend.FromHost(gate, b, c);
        using var tr = backend.FromHost(r, b, c);
        using var ty = backend.Empty(b, t, c);
        backend.GatedAddBroadcast(tx, tg, tr, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-6);
        backend.GatedAddBroadcast(tx, tg, tr, tx); // in place
        Close.PerElement(expected, tx.ToArray(), 1e-6);
        using var wrong = backend.Zeros(b, c + 1);
        Assert.Throws<ArgumentException>(() => backend.GatedAddBroadcast(tx, tg, wrong, tx));
    }
}
