using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Image ⇄ token reshuffles of a patch-based transformer (pure data movement, no arithmetic).
public sealed unsafe partial class CpuBackend
{
    // x: (B, C, H, W) → y: (B, Gh·Gw, C·p·p) with Gh = H/p, Gw = W/p
    // y[b, hh·Gw + ww, (c·p + i)·p + j] = x[b, c, hh·p + i, ww·p + j]
    public void Patchify(Tensor x, int patch, Tensor destination)
    {
        if (x.Rank != 4) throw new ArgumentException($"Patchify: x must be (B, C, H, W), got {x}");
        int b = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), p = patch;
        CheckPatchGrid("Patchify", h, w, p);
        int gh = h / p, gw = w / p, f = c * p * p;
        if (destination.Rank != 3 || destination.Dim(0) != b || destination.Dim(1) != gh * gw || destination.Dim(2) != f)
            throw new ArgumentException($"Patchify: destination must be ({b}, {gh * gw}, {f}), got {destination}");
        float* px = Pointer(x), py = Pointer(destination);
        Parallel.For(0, b * gh, Options(x.Length), row =>
        {
            int n = row / gh, hh = row % gh;
            for (int ww = 0; ww < gw; ww++)
            {
                float* token = py + ((long)n * gh * gw + hh * gw + ww) * f;
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < p; i++)
                    {
                        float* src = px + (((long)n * c + ch) * h + hh * p + i) * w + ww * p;
                        new ReadOnlySpan<float>(src, p).CopyTo(new Span<float>(token + (ch * p + i) * p, p));
                    }
            }
        });
    }

    // x: (B, Gh·Gw, p·p·C) → y: (B, C, H, W) with H = Gh·p, W = Gw·p (taken from y's shape)
    // y[b, c, hh·p + i, ww·p + j] = x[b, hh·Gw + ww, (i·p + j)·C + c]
    public void Unpatchify(Tensor x, int patch, Tensor destination)
    {
        if (destination.Rank != 4) throw new ArgumentException($"Unpatchify: destination must be (B, C, H, W), got {destination}");
        int b = destination.Dim(0), c = destination.Dim(1), h = destination.Dim(2), w = destination.Dim(3), p = patch;
        CheckPatchGrid("Unpatchify", h, w, p);
        int gh = h / p, gw = w / p, f = p * p * c;
        if (x.Rank != 3 || x.Dim(0) != b || x.Dim(1) != gh * gw || x.Dim(2) != f)
            throw new ArgumentException($"Unpatchify: x must be ({b}, {gh * gw}, {f}) for destination {destination}, got {x}");
        float* px = Pointer(x), py = Pointer(destination);
        Parallel.For(0, b * c, Options(x.Length), plane =>
        {
            int n = plane / c, ch = plane % c;
            float* dst = py + (long)plane * h * w;
            for (int y = 0; y < h; y++)
            {
                int hh = y / p, i = y % p;
                for (int xx = 0; xx < w; xx++)
                {
                    int ww = xx / p, j = xx % p;
                    dst[(long)y * w + xx] = px[((long)n * gh * gw + hh * gw + ww) * f + (i * p + j) * c + ch];
                }
            }
        });
    }

    private static void CheckPatchGrid(string op, int h, int w, int p)
    {
        if (p <= 0 || h % p != 0 || w % p != 0)
            throw new ArgumentException($"{op}: a {h}×{w} image does not split into {p}×{p} patches");
    }
}
