using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // x: (N, H, W, C) → destination: (N, OH, OW, C); one output row (n, i) per work item, its two source rows blended
    // along x first (each value once), then the pair along y, then the pixel mapping.
    public void ResizeBilinear(Tensor x, BilinearResizeSpec spec, Tensor destination)
    {
        spec.Check(x, destination);
        int n = x.Dim(0), w = x.Dim(2), c = x.Dim(3), oh = destination.Dim(1), ow = destination.Dim(2);
        float* px = Pointer(x), pd = Pointer(destination);
        long inImage = (long)x.Dim(1) * w * c, outImage = (long)oh * ow * c;
        Parallel.For(0, n * oh, Options((long)n * oh * ow * c), item =>
        {
            int image = item / oh, i = item % oh;
            var top = new float[ow * c];
            var bottom = new float[ow * c];
            Horizontal(px + image * inImage + (long)spec.Rows.Low[i] * w * c, spec, c, top);
            Horizontal(px + image * inImage + (long)spec.Rows.High[i] * w * c, spec, c, bottom);
            float wl = spec.Rows.LowWeight[i], wh = spec.Rows.HighWeight[i];
            float* row = pd + image * outImage + (long)i * ow * c;
            for (int j = 0; j < top.Length; j++) row[j] = Map(Blend(top[j], bottom[j], wl, wh, spec.Blend), spec);
        });
    }

    private static void Horizontal(float* source, BilinearResizeSpec spec, int c, float[] row)
    {
        var cols = spec.Columns;
        for (int j = 0; j < cols.OutputSize; j++)
            for (int ch = 0; ch < c; ch++)
            {
                float a = source[(long)cols.Low[j] * c + ch], b = source[(long)cols.High[j] * c + ch];
                if (spec.InputDivisor != 1f)
                {
                    a /= spec.InputDivisor;
                    b /= spec.InputDivisor;
                }
                row[j * c + ch] = Blend(a, b, cols.LowWeight[j], cols.HighWeight[j], spec.Blend);
            }
    }

    private static float Blend(float a, float b, float wa, float wb, BilinearBlend blend)
        => blend == BilinearBlend.Lerp ? a + (b - a) * wb : MathF.FusedMultiplyAdd(a, wa, b * wb);

    private static float Map(float r, BilinearResizeSpec spec)
        => spec.MultiplyFirst ? r * spec.Multiply - spec.Subtract : (r - spec.Subtract) * spec.Multiply;
}
