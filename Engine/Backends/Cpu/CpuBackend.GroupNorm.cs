using System.Numerics.Tensors;
using DyDiT.Eval.Engine.Tensors;
using Tensor = DyDiT.Eval.Engine.Tensors.Tensor;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Group normalisation over channels-last activations.
//
// x: (N, …, C) with P = the product of the middle dimensions (H·W for an image). The C channels are cut into G
// groups of C/G consecutive channels; sample n and group g are normalised together over their P·(C/G) values with
// the biased variance, as torch.nn.GroupNorm does on (N, C, H, W):
//     y[n, p, c] = (x[n, p, c] − mean[n, g]) / √(var[n, g] + eps) · γ[c] + β[c],   g = c / (C/G).
// The statistics are accumulated in float64 (two passes: mean, then squared deviations). Like PyTorch's CPU kernel,
// the normalisation is then applied as one multiply-add per value with a per-(n, c) scale and shift:
//     a[n, c] = γ[c] / √(var + eps),  b[n, c] = β[c] − mean · a[n, c],  y = x · a + b.
public sealed unsafe partial class CpuBackend
{
    public void GroupNorm(Tensor x, int groups, float eps, Tensor? weight, Tensor? bias, Tensor destination)
    {
        var (n, c) = OpChecks.GroupNorm(x, groups, weight, bias, destination);
        if (x.Length == 0) return;
        long pixels = x.Length / ((long)n * c);
        int perGroup = c / groups;
        double count = (double)pixels * perGroup;
        float* px = Pointer(x), py = Pointer(destination);
        float* gamma = weight is null ? null : Pointer(weight), beta = bias is null ? null : Pointer(bias);

        // Pass 1: per (n, g) statistics, folded into per-(n, c) scale and shift.
        var scale = new float[(long)n * c];
        var shift = new float[(long)n * c];
        Parallel.For(0, n * groups, Options(x.Length), ng =>
        {
            int b = ng / groups, g = ng % groups;
            float* first = px + (long)b * pixels * c + g * perGroup; // group g's channels of pixel 0
            double sum = 0;
            for (long p = 0; p < pixels; p++)
                sum += TensorPrimitives.Sum(new ReadOnlySpan<float>(first + p * c, perGroup));
            double mean = sum / count;
            double squares = 0;
            for (long p = 0; p < pixels; p++)
            {
                float* v = first + p * c;
                for (int j = 0; j < perGroup; j++)
                {
                    double d = v[j] - mean;
                    squares += d * d;
                }
            }
            double invStd = 1.0 / Math.Sqrt(squares / count + eps);
            for (int j = 0; j < perGroup; j++)
            {
                int ch = g * perGroup + j;
                double a = (gamma is null ? 1.0 : gamma[ch]) * invStd;
                scale[(long)b * c + ch] = (float)a;
                shift[(long)b * c + ch] = (float)((beta is null ? 0.0 : beta[ch]) - mean * a);
            }
        });

        // Pass 2: y = x · a + b, one row of C channels at a time (in place is fine: each value is read before written).
        long rows = (long)n * pixels;
        const int rowsPerTask = 256;
        long tasks = (rows + rowsPerTask - 1) / rowsPerTask;
        Parallel.For(0L, tasks, Options(x.Length), task =>
        {
            long end = Math.Min(rows, (task + 1) * rowsPerTask);
            for (long r = task * rowsPerTask; r < end; r++)
            {
                int b = (int)(r / pixels);
                TensorPrimitives.FusedMultiplyAdd(new ReadOnlySpan<float>(px + r * c, c),
                    scale.AsSpan(b * c, c), shift.AsSpan(b * c, c), new Span<float>(py + r * c, c));
            }
        });
    }
}
