using System.Numerics;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Pooling and channel copies over channels-last tensors: every pixel's channels are one contiguous run, so each
// window position is a vector operation over C values. Work is split over (image, output row).
public sealed unsafe partial class CpuBackend
{
    // x: (N, H, W, C) → y: (N, OH, OW, Cy), channels [yOff, yOff + C): max over the window positions inside x.
    public void MaxPool2d(Tensor x, int kernel, int stride, int padding, Tensor destination, int destinationChannelOffset = 0)
    {
        var g = OpChecks.Pool2d("MaxPool2d", x, kernel, stride, padding, destination, destinationChannelOffset);
        float* px = Pointer(x), py = Pointer(destination);
        ForOutputRows(g, (n, oh) => PoolRow(g, px, py, n, oh, max: true, countIncludePad: false));
    }

    // x: (N, H, W, C) → y: (N, OH, OW, Cy), channels [yOff, yOff + C): the window's sum divided by
    //   countIncludePad = false: the number of window positions inside x (TensorFlow's "SAME" average pool);
    //   countIncludePad = true:  the window clipped to the padded extent [−p, H + p) (PyTorch's default).
    public void AvgPool2d(Tensor x, int kernel, int stride, int padding, bool countIncludePad, Tensor destination, int destinationChannelOffset = 0)
    {
        var g = OpChecks.Pool2d("AvgPool2d", x, kernel, stride, padding, destination, destinationChannelOffset);
        float* px = Pointer(x), py = Pointer(destination);
        ForOutputRows(g, (n, oh) => PoolRow(g, px, py, n, oh, max: false, countIncludePad));
    }

    // One output row of a pool: for each output pixel, the valid window positions in (kh, kw) order are combined
    // channel-vector by channel-vector (max, or sum then divide), so each input vector is loaded once per window.
    private static void PoolRow(PoolShape g, float* px, float* py, int n, int oh, bool max, bool countIncludePad)
    {
        var taps = stackalloc IntPtr[g.K * g.K];
        int h0 = oh * g.S - g.P;
        int hLo = Math.Max(h0, 0), hHi = Math.Min(h0 + g.K, g.H);
        for (int ow = 0; ow < g.OW; ow++)
        {
            int w0 = ow * g.S - g.P;
            int wLo = Math.Max(w0, 0), wHi = Math.Min(w0 + g.K, g.W);
            int count = 0;
            for (int ih = hLo; ih < hHi; ih++)
                for (int iw = wLo; iw < wHi; iw++)
                    taps[count++] = (IntPtr)(px + (((long)n * g.H + ih) * g.W + iw) * g.C);
            float* dst = py + (((long)n * g.OH + oh) * g.OW + ow) * g.Cy + g.YOff;
            if (max)
            {
                CombineMax(taps, count, dst, g.C);
            }
            else
            {
                int divisor = countIncludePad
                    ? (Math.Min(h0 + g.K, g.H + g.P) - h0) * (Math.Min(w0 + g.K, g.W + g.P) - w0)
                    : count;
                CombineMean(taps, count, divisor, dst, g.C);
            }
        }
    }

    // dst[c] = max_j taps[j][c]
    private static void CombineMax(IntPtr* taps, int count, float* dst, int c)
    {
        int v = Vector<float>.Count, i = 0;
        for (; i <= c - v; i += v)
        {
            var acc = Vector.Load((float*)taps[0] + i);
            for (int j = 1; j < count; j++) acc = Vector.Max(acc, Vector.Load((float*)taps[j] + i));
            acc.Store(dst + i);
        }
        for (; i < c; i++)
        {
            float m = ((float*)taps[0])[i];
            for (int j = 1; j < count; j++) m = Math.Max(m, ((float*)taps[j])[i]);
            dst[i] = m;
        }
    }

    // dst[c] = (Σ_j taps[j][c], summed in tap order) / divisor
    private static void CombineMean(IntPtr* taps, int count, int divisor, float* dst, int c)
    {
        int v = Vector<float>.Count, i = 0;
        var d = new Vector<float>(divisor);
        for (; i <= c - v; i += v)
        {
            var acc = Vector.Load((float*)taps[0] + i);
            for (int j = 1; j < count; j++) acc += Vector.Load((float*)taps[j] + i);
            (acc / d).Store(dst + i);
        }
        for (; i < c; i++)
        {
            float s = ((float*)taps[0])[i];
            for (int j = 1; j < count; j++) s += ((float*)taps[j])[i];
            dst[i] = s / divisor;
        }
    }

    // x: (N, H, W, C) → y: (N, C), y[n, c] = mean over (h, w) of x[n, h, w, c], summed in float64.
    public void GlobalAvgPool(Tensor x, Tensor destination)
    {
        var (n, hw, c) = OpChecks.GlobalAvgPool(x, destination);
        float* px = Pointer(x), py = Pointer(destination);
        Parallel.For(0, n, Options(x.Length), i =>
        {
            var sum = new double[c];
            float* img = px + (long)i * hw * c;
            for (int p = 0; p < hw; p++)
            {
                float* row = img + (long)p * c;
                for (int j = 0; j < c; j++) sum[j] += row[j];
            }
            for (int j = 0; j < c; j++) py[(long)i * c + j] = (float)(sum[j] / hw);
        });
    }

    // y[..., dOff + j] = x[..., sOff + j] for j < count; x: (…, Cs), y: (…, Cd) with the same leading dimensions.
    public void CopyChannels(Tensor source, int sourceChannelOffset, int count, Tensor destination, int destinationChannelOffset)
    {
        var (cs, cd) = OpChecks.CopyChannels(source, sourceChannelOffset, count, destination, destinationChannelOffset);
        if (count == 0 || source.Length == 0) return;
        long rows = source.Length / cs;
        float* ps = Pointer(source) + sourceChannelOffset, pd = Pointer(destination) + destinationChannelOffset;
        long perPiece = Math.Max(1, ParallelThreshold / count);
        long pieces = (rows + perPiece - 1) / perPiece;
        Parallel.For(0L, pieces, Options(rows * count), i =>
        {
            long end = Math.Min(rows, (i + 1) * perPiece);
            for (long r = i * perPiece; r < end; r++)
                Buffer.MemoryCopy(ps + r * cs, pd + r * cd, count * sizeof(float), count * sizeof(float));
        });
    }

    // parts[i]: (N, H, W, C_i) → y: (N, H, W, Σ C_i), parts in order along the last dimension.
    public void ConcatChannels(IReadOnlyList<Tensor> parts, Tensor destination)
    {
        OpChecks.ConcatChannels(parts, destination);
        int offset = 0;
        foreach (var t in parts)
        {
            CopyChannels(t, 0, t.Dim(-1), destination, offset);
            offset += t.Dim(-1);
        }
    }

    private void ForOutputRows(PoolShape g, Action<int, int> body)
    {
        Parallel.For(0, g.N * g.OH, Options((long)g.N * g.OH * g.OW * g.C * g.K * g.K), i => body(i / g.OH, i % g.OH));
    }
}
