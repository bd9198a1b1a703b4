using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Image ⇄ token reshuffles of a patch-based transformer (pure data movement, no arithmetic).
public sealed unsafe partial class CpuBackend
{
    // x: (B, C, H, W) → y: (B, Gh·Gw, C·p·p) with Gh = H/p, Gw = W/p
    // y[b, hh·Gw + ww, (c·p + i)·p + j] = x[b, c, hh·p + i, ww·p + j]
    public void Patchify(Tensor x, int patch, Tensor destination)
    {
        var (b, c, h, w, p, gh, gw, f) = OpChecks.Patchify(x, patch, destination);
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
        var (b, c, h, w, p, gh, gw, f) = OpChecks.Unpatchify(x, patch, destination);
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
}
