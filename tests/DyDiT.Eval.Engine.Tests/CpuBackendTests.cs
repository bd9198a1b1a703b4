using DyDiT.Eval.Engine.LinearAlgebra;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>CPU kernels against plain float64 loops written from the formulas.</summary>
public sealed class CpuBackendTests(BackendPool pool) : IClassFixture<BackendPool>
{
    private readonly BackendPool _pool = pool;

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    // reference: C[i,j] = alpha · Σ_k opA[i,k] · opB[k,j] + beta · C0[i,j], in float64
    private static double[] ReferenceGemm(int m, int n, int k, float[] a, bool ta, float[] b, bool tb, float[] c0, float alpha, float beta)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                c[i * n + j] = alpha * s + beta * c0[i * n + j];
            }
        return c;
    }

    public static IEnumerable<object[]> GemmMatchesReferenceCases => DeviceCases.Cross(
        [1, 1, 1, false, false],
        [7, 5, 3, false, false],
        [7, 5, 3, true, false],
        [7, 5, 3, false, true],
        [7, 5, 3, true, true],
        [64, 96, 33, false, true],
        [129, 65, 257, true, true]);

    [Theory, MemberData(nameof(GemmMatchesReferenceCases))]
    public void GemmMatchesReference(string device, int m, int n, int k, bool ta, bool tb)
    {
        var backend = _pool[device];
        var a = Random(m * k, 1);
        var b = Random(k * n, 2);
        var c0 = Random(m * n, 3);
        using var ta_ = backend.FromHost(a, ta ? [k, m] : [m, k]);
        using var tb_ = backend.FromHost(b, tb ? [n, k] : [k, n]);
        using var tc = backend.FromHost(c0, m, n);
        backend.Gemm(ta_, ta, tb_, tb, tc, alpha: 0.75f, beta: -0.5f);
        Close.PerElement(ReferenceGemm(m, n, k, a, ta, b, tb, c0, 0.75f, -0.5f), tc.ToArray(), 1e-5 * Math.Sqrt(k));
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void GemmRejectsMismatchedShapes(string device)
    {
        var backend = _pool[device];
        using var a = backend.Zeros(3, 4);
        using var b = backend.Zeros(5, 6);
        using var c = backend.Zeros(3, 6);
        var e = Assert.Throws<ArgumentException>(() => backend.Gemm(a, false, b, false, c));
        Assert.Contains("3x4", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void BatchedGemmWithSharedRightOperand(string device)
    {
        var backend = _pool[device];
        // A: (batch, M, K), B: one (N, K) matrix used for every batch (stride 0), C: (batch, M, N)
        const int batch = 5, m = 6, n = 4, k = 9;
        var a = Random(batch * m * k, 4);
        var b = Random(n * k, 5);
        using var ta = backend.FromHost(a, batch, m, k);
        using var tb = backend.FromHost(b, n, k);
        using var tc = backend.Zeros(batch, m, n);
        backend.BatchedGemm(batch, m, n, k, ta, m * k, false, tb, 0, true, tc, m * n);
        var got = tc.ToArray();
        for (int i = 0; i < batch; i++)
        {
            var expected = ReferenceGemm(m, n, k, a[(i * m * k)..((i + 1) * m * k)], false, b, true, new float[m * n], 1, 0);
            Close.PerElement(expected, got[(i * m * n)..((i + 1) * m * n)], 1e-5);
        }
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void BatchedGemmChecksExtent(string device)
    {
        var backend = _pool[device];
        using var a = backend.Zeros(2, 3, 3);
        using var c = backend.Zeros(3, 3, 3);
        Assert.Throws<ArgumentException>(() => backend.BatchedGemm(3, 3, 3, 3, a, 9, false, a, 9, false, c, 9));
    }

    public static IEnumerable<object[]> ElementwiseKernelsMatchFormulasCases => DeviceCases.Cross(
        [17],
        [300_001]); // large enough to be split over threads

    [Theory, MemberData(nameof(ElementwiseKernelsMatchFormulasCases))]
    public void ElementwiseKernelsMatchFormulas(string device, int length)
    {
        var backend = _pool[device];
        var x = Random(length, 11);
        var y = Random(length, 12);
        for (int i = 0; i < length; i++) x[i] *= 6; // reach tanh/sigmoid saturation
        using var tx = backend.FromHost(x, length);
        using var ty = backend.FromHost(y, length);
        using var d = backend.Zeros(length);

        void Check(Func<double, double, double> f, double tol)
        {
            var got = d.ToArray();
            for (int i = 0; i < length; i += 1 + length / 5000)
            {
                double e = f(x[i], y[i]);
                Assert.True(Math.Abs(e - got[i]) <= tol * Math.Max(1, Math.Abs(e)), $"index {i}: x={x[i]} expected {e} got {got[i]}");
            }
        }

        backend.Add(tx, ty, d); Check((a, b) => a + b, 1e-7);
        backend.Multiply(tx, ty, d); Check((a, b) => a * b, 1e-7);
        backend.ScaleShift(tx, 1.5f, -0.25f, d); Check((a, _) => a * 1.5 - 0.25, 1e-6);
        backend.Silu(tx, d); Check((a, _) => a / (1 + Math.Exp(-a)), 1e-6);
        backend.GeluTanh(tx, d); Check((a, _) => 0.5 * a * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a))), 1e-6);
    }

    public static IEnumerable<object[]> ElementwiseKernelsWorkInPlaceCases => DeviceCases.Cross(
        [17],
        [300_001]);

    [Theory, MemberData(nameof(ElementwiseKernelsWorkInPlaceCases))]
    public void ElementwiseKernelsWorkInPlace(string device, int length)
    {
        var backend = _pool[device];
        var x = Random(length, 14);
        for (int i = 0; i < length; i++) x[i] *= 6;
        void Check(Action<Engine.Tensors.Tensor> op, Func<double, double> f)
        {
            using var t = backend.FromHost(x, length);
            op(t);
            var got = t.ToArray();
            for (int i = 0; i < length; i += 1 + length / 5000)
                Assert.True(Math.Abs(f(x[i]) - got[i]) <= 1e-6 * Math.Max(1, Math.Abs(f(x[i]))), $"index {i}: x={x[i]} expected {f(x[i])} got {got[i]}");
        }
        Check(t => backend.Silu(t, t), a => a / (1 + Math.Exp(-a)));
        Check(t => backend.GeluTanh(t, t), a => 0.5 * a * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a))));
        Check(t => backend.ScaleShift(t, 1.5f, -0.25f, t), a => a * 1.5 - 0.25);
        Check(t => backend.Add(t, t, t), a => 2 * a);
        Check(t => backend.Multiply(t, t, t), a => a * a);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void SoftmaxOverLastDimension(string device)
    {
        var backend = _pool[device];
        var x = Random(3 * 1008, 13);
        for (int i = 0; i < x.Length; i++) x[i] *= 20;
        using var tx = backend.FromHost(x, 3, 1008);
        using var d = backend.Zeros(3, 1008);
        backend.SoftmaxLastDim(tx, d);
        var got = d.ToArray();
        for (int r = 0; r < 3; r++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int c = 0; c < 1008; c++) max = Math.Max(max, x[r * 1008 + c]);
            for (int c = 0; c < 1008; c++) sum += Math.Exp(x[r * 1008 + c] - max);
            for (int c = 0; c < 1008; c++)
            {
                double e = Math.Exp(x[r * 1008 + c] - max) / sum;
                Assert.True(Math.Abs(e - got[r * 1008 + c]) <= 1e-6 * Math.Max(e, 1e-3), $"row {r} col {c}");
            }
        }
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void ReshapeSharesStorageAndChecksCount(string device)
    {
        var backend = _pool[device];
        using var t = backend.FromHost([1, 2, 3, 4, 5, 6], 2, 3);
        using var r = t.Reshape(3, -1);
        Assert.Equal([3, 2], r.Shape.ToArray());
        Assert.Equal([1f, 2, 3, 4, 5, 6], r.ToArray());
        Assert.Throws<ArgumentException>(() => t.Reshape(4, -1));
    }
}

/// <summary>Each backend's memory reuse (the float64 host linear algebra tests are in HostLinearAlgebraTests).</summary>
public sealed class MemoryReuseTests(BackendPool pool) : IClassFixture<BackendPool>
{
    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void ReusedMemoryIsZeroedByZerosOnly(string device)
    {
        var backend = pool[device];
        // Large blocks go back to the backend's pool and come out again for the same size.
        var ones = new float[1 << 17];
        Array.Fill(ones, 1f);
        using (var t = backend.FromHost(ones, 1 << 17)) { }
        using (var z = backend.Zeros(1 << 17)) Assert.All(z.ToArray(), v => Assert.Equal(0f, v));
        using var e = backend.Empty(2, 1 << 16);
        Assert.Equal([2, 1 << 16], e.Shape.ToArray());
        backend.Upload(ones, e);
        Assert.All(e.ToArray(), v => Assert.Equal(1f, v));
    }
}
