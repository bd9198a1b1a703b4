using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>The DiT kernels (LayerNorm, adaLN modulation, gated residual, attention, patches, guidance) against naive float64 loops.</summary>
public sealed class TransformerKernelTests(BackendPool pool) : IClassFixture<BackendPool>
{
    private readonly BackendPool _pool = pool;

    private static float[] Random(int n, int seed, double amplitude = 1)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * amplitude);
        return v;
    }

    public static IEnumerable<object[]> LayerNormMatchesReferenceCases => DeviceCases.Cross(
        [1, 1, 64],
        [3, 5, 7],
        [2, 300, 384]); // large enough to run in parallel

    [Theory, MemberData(nameof(LayerNormMatchesReferenceCases))]
    public void LayerNormMatchesReference(string device, int b, int t, int c)
    {
        var backend = _pool[device];
        var x = Random(b * t * c, 1, amplitude: 3);
        for (int i = 0; i < x.Length; i++) x[i] += 5; // an offset, so a one-pass variance would lose digits
        var expected = new double[x.Length];
        for (int r = 0; r < b * t; r++)
        {
            double mean = 0, var = 0;
            for (int k = 0; k < c; k++) mean += x[r * c + k];
            mean /= c;
            for (int k = 0; k < c; k++) var += (x[r * c + k] - mean) * (x[r * c + k] - mean);
            var /= c;
            for (int k = 0; k < c; k++) expected[r * c + k] = (x[r * c + k] - mean) / Math.Sqrt(var + 1e-6);
        }
        using var tx = backend.FromHost(x, b, t, c);
        using var ty = backend.Empty(b, t, c);
        backend.LayerNorm(tx, 1e-6f, ty);
        Close.PerElement(expected, ty.ToArray(), 2e-6);
        backend.LayerNorm(tx, 1e-6f, tx); // in place
        Close.PerElement(expected, tx.ToArray(), 2e-6);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void LayerNormOfAConstantRowIsZero(string device)
    {
        var backend = _pool[device];
        using var tx = backend.FromHost([2f, 2f, 2f, 2f], 1, 4);
        backend.LayerNorm(tx, 1e-6f, tx);
        Assert.All(tx.ToArray(), v => Assert.Equal(0f, v));
    }

    public static IEnumerable<object[]> ModulateMatchesReferenceCases => DeviceCases.Cross(
        [1, 1, 8],
        [3, 5, 7],
        [2, 300, 384]);

    [Theory, MemberData(nameof(ModulateMatchesReferenceCases))]
    public void ModulateMatchesReference(string device, int b, int t, int c)
    {
        var backend = _pool[device];
        var x = Random(b * t * c, 2);
        var shift = Random(b * c, 3);
        var scale = Random(b * c, 4);
        var expected = new double[x.Length];
        for (int n = 0; n < b; n++)
            for (int i = 0; i < t; i++)
                for (int k = 0; k < c; k++)
                    expected[(n * t + i) * c + k] = (double)x[(n * t + i) * c + k] * (1 + (double)scale[n * c + k]) + shift[n * c + k];
        using var tx = backend.FromHost(x, b, t, c);
        using var tshift = backend.FromHost(shift, b, c);
        using var tscale = backend.FromHost(scale, b, c);
        using var ty = backend.Empty(b, t, c);
        backend.Modulate(tx, tshift, tscale, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-6);
        backend.Modulate(tx, tshift, tscale, tx);
        Close.PerElement(expected, tx.ToArray(), 1e-6);
    }

    public static IEnumerable<object[]> GatedAddMatchesReferenceCases => DeviceCases.Cross(
        [1, 1, 8],
        [3, 5, 7],
        [2, 300, 384]);

    [Theory, MemberData(nameof(GatedAddMatchesReferenceCases))]
    public void GatedAddMatchesReference(string device, int b, int t, int c)
    {
        var backend = _pool[device];
        var x = Random(b * t * c, 5);
        var r = Random(b * t * c, 6);
        var gate = Random(b * c, 7);
        var expected = new double[x.Length];
        for (int n = 0; n < b; n++)
            for (int i = 0; i < t; i++)
                for (int k = 0; k < c; k++)
                {
                    int at = (n * t + i) * c + k;
                    expected[at] = x[at] + (double)gate[n * c + k] * r[at];
                }
        using var tx = backend.FromHost(x, b, t, c);
        using var tr = backend.FromHost(r, b, t, c);
        using var tg = backend.FromHost(gate, b, c);
        using var ty = backend.Empty(b, t, c);
        backend.GatedAdd(tx, tg, tr, ty);
        Close.PerElement(expected, ty.ToArray(), 1e-6);
        backend.GatedAdd(tx, tg, tr, tx);
        Close.PerElement(expected, tx.ToArray(), 1e-6);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void PerSampleShapesAreChecked(string device)
    {
        var backend = _pool[device];
        using var x = backend.Zeros(2, 3, 4);
        using var wrong = backend.Zeros(3, 4);
        using var right = backend.Zeros(2, 4);
        Assert.Throws<ArgumentException>(() => backend.Modulate(x, wrong, right, x));
        Assert.Throws<ArgumentException>(() => backend.GatedAdd(x, wrong, x, x));
    }

    // softmax(q·kᵀ/√hd)·v per (sample, head), straight from the definition
    private static double[] ReferenceAttention(float[] qkv, int b, int t, int c, int heads)
    {
        int hd = c / heads;
        var y = new double[b * t * c];
        var s = new double[t];
        for (int n = 0; n < b; n++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < t; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < t; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < hd; e++)
                            dot += (double)qkv[(n * t + i) * 3 * c + h * hd + e] * qkv[(n * t + j) * 3 * c + c + h * hd + e];
                        s[j] = dot / Math.Sqrt(hd);
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < t; j++) sum += s[j] = Math.Exp(s[j] - max);
                    for (int e = 0; e < hd; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < t; j++) acc += s[j] / sum * qkv[(n * t + j) * 3 * c + 2 * c + h * hd + e];
                        y[(n * t + i) * c + h * hd + e] = acc;
                    }
                }
        return y;
    }

    public static IEnumerable<object[]> MultiHeadAttentionMatchesReferenceCases => DeviceCases.Cross(
        [1, 1, 4, 1, 1],
        [1, 5, 12, 3, 1],
        [3, 16, 64, 4, 2],
        [2, 17, 48, 6, 2],
        [2, 9, 24, 2, 1]);

    [Theory, MemberData(nameof(MultiHeadAttentionMatchesReferenceCases))]
    public void MultiHeadAttentionMatchesReference(string device, int b, int t, int c, int heads, int threads)
    {
        // the pool's backends use 2 threads; other thread counts get a backend of their own
        using var own = threads == 2 || device.StartsWith("cuda", StringComparison.Ordinal) ? null : Backends.Backends.Create(device, threads);
        var backend = own ?? _pool[device];
        var qkv = Random(b * t * 3 * c, 8, amplitude: 2);
        var expected = ReferenceAttention(qkv, b, t, c, heads);
        using var tqkv = backend.FromHost(qkv, b, t, 3 * c);
        using var ty = backend.Empty(b, t, c);
        backend.MultiHeadAttention(tqkv, heads, ty);
        Close.PerElement(expected, ty.ToArray(), 2e-6);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void AttentionSurvivesLargeLogits(string device)
    {
        var backend = _pool[device];
        // q·k of ±1e4: a softmax without max subtraction overflows to inf/NaN
        var qkv = Random(2 * 3 * 8, 9, amplitude: 100);
        using var tqkv = backend.FromHost(qkv, 1, 2, 24);
        using var ty = backend.Empty(1, 2, 8);
        backend.MultiHeadAttention(tqkv, 2, ty);
        Close.PerElement(ReferenceAttention(qkv, 1, 2, 8, 2), ty.ToArray(), 1e-5);
    }

    public static IEnumerable<object[]> PatchifyAndUnpatchifyFollowTheirLayoutsCases => DeviceCases.Cross(
        [2, 4, 8, 8, 2],
        [1, 3, 12, 8, 4],
        [2, 1, 6, 6, 1]);

    [Theory, MemberData(nameof(PatchifyAndUnpatchifyFollowTheirLayoutsCases))]
    public void PatchifyAndUnpatchifyFollowTheirLayouts(string device, int b, int c, int h, int w, int p)
    {
        var backend = _pool[device];
        int gw = w / p, t = h / p * gw;
        var x = Random(b * c * h * w, 10);
        var tokens = new double[b * t * c * p * p];
        for (int n = 0; n < b; n++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int xx = 0; xx < w; xx++)
                        tokens[((n * t) + y / p * gw + xx / p) * c * p * p + (ch * p + y % p) * p + xx % p] = x[((n * c + ch) * h + y) * w + xx];
        using var tx = backend.FromHost(x, b, c, h, w);
        using var tt = backend.Empty(b, t, c * p * p);
        backend.Patchify(tx, p, tt);
        Close.PerElement(tokens, tt.ToArray(), 0);

        // unpatchify reads a token as (p_row, p_col, channel)
        var feats = Random(b * t * p * p * c, 11);
        var image = new double[b * c * h * w];
        for (int n = 0; n < b; n++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int xx = 0; xx < w; xx++)
                        image[((n * c + ch) * h + y) * w + xx] = feats[(n * t + y / p * gw + xx / p) * p * p * c + ((y % p) * p + xx % p) * c + ch];
        using var tf = backend.FromHost(feats, b, t, p * p * c);
        using var ti = backend.Empty(b, c, h, w);
        backend.Unpatchify(tf, p, ti);
        Close.PerElement(image, ti.ToArray(), 0);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void PatchShapesAreChecked(string device)
    {
        var backend = _pool[device];
        using var x = backend.Zeros(1, 4, 6, 6);
        using var tokens = backend.Zeros(1, 4, 16);
        Assert.Throws<ArgumentException>(() => backend.Patchify(x, 4, tokens));
        using var wrong = backend.Zeros(1, 9, 15);
        Assert.Throws<ArgumentException>(() => backend.Patchify(x, 2, wrong));
    }

    public static IEnumerable<object[]> ClassifierFreeGuidanceMixesTheGuidedChannelsCases => DeviceCases.Cross(
        [1, 8, 3, 4],
        [3, 8, 3, 5],
        [2, 4, 4, 1],
        [2, 4, 0, 1]);

    [Theory, MemberData(nameof(ClassifierFreeGuidanceMixesTheGuidedChannelsCases))]
    public void ClassifierFreeGuidanceMixesTheGuidedChannels(string device, int n, int c, int guided, int plane)
    {
        var backend = _pool[device];
        float scale = 4f;
        var x = Random(2 * n * c * plane, 12);
        var expected = new double[x.Length];
        for (int i = 0; i < 2 * n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int k = 0; k < plane; k++)
                {
                    int at = (i * c + ch) * plane + k;
                    if (ch >= guided) { expected[at] = x[at]; continue; }
                    int row = i % n;
                    double cond = x[(row * c + ch) * plane + k], uncond = x[((n + row) * c + ch) * plane + k];
                    expected[at] = uncond + scale * (cond - uncond);
                }
        using var tx = backend.FromHost(x, 2 * n, c, plane);
        using var ty = backend.Empty(2 * n, c, plane);
        backend.ClassifierFreeGuidance(tx, guided, scale, ty);
        Close.PerElement(expected, ty.ToArray(), 2e-6);
        backend.ClassifierFreeGuidance(tx, guided, scale, tx);
        Close.PerElement(expected, tx.ToArray(), 2e-6);
    }
}
