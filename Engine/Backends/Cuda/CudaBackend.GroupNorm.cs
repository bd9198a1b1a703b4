using ILGPU;
using ILGPU.Runtime;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cuda;

// Group normalisation over channels-last activations, as the CPU backend computes it: x (N, P, C), the C channels cut
// into G groups of C/G consecutive channels; each (n, g) is normalised over its P·(C/G) values with the biased variance.
// Statistics in float64, two passes (mean, then squared deviations), by one thread per (n, g) in a fixed order; they
// are folded into a per-(n, c) scale a = γ / √(var + eps) and shift b = β − mean · a, applied as y = x · a + b.
public sealed partial class CudaBackend
{
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>? _groupNormStats;
    private Action<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>? _groupNormApply;

    public void GroupNorm(Tensor x, int groups, float eps, Tensor? weight, Tensor? bias, Tensor destination)
    {
        var (n, c) = OpChecks.GroupNorm(x, groups, weight, bias, destination);
        if (x.Length == 0) return;
        long pixels = x.Length / ((long)n * c);
        var args = new GroupNormArgs(n, pixels, c, groups, eps, weight is not null, bias is not null);
        ArrayView<float> vx = View(x), vy = View(destination);
        _groupNormStats ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>(GroupNormKernels.Statistics);
        _groupNormApply ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, Work, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormArgs>(GroupNormKernels.Apply);
        lock (_floatScratchLock)
        {
            var scratch = FloatScratch(2L * n * c);
            var statistics = Plan((long)n * groups);
            _groupNormStats(statistics.Threads, statistics, vx, weight is null ? vx : View(weight), bias is null ? vx : View(bias), scratch, args);
            var apply = Plan(x.Length);
            _groupNormApply(apply.Threads, apply, vx, vy, scratch, args);
        }
    }
}

/// <summary>Scalars of the GroupNorm kernels.</summary>
internal readonly struct GroupNormArgs(int n, long pixels, int channels, int groups, float eps, bool hasWeight, bool hasBias)
{
    public readonly long Pixels = pixels, NC = (long)n * channels;
    public readonly int C = channels, Groups = groups, PerGroup = channels / groups;
    public readonly float Eps = eps;
    public readonly int HasWeight = hasWeight ? 1 : 0, HasBias = hasBias ? 1 : 0;
}

internal static class GroupNormKernels
{
    // x: (N, P, C) → ab: scale (N, C) then shift (N, C); one thread per (n, g), values visited pixel by pixel, channel
    // by channel, in float64: mean, then the biased variance around it, then a = γ / √(var + eps), b = β − mean · a.
    public static void Statistics(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> ab, GroupNormArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long n = index / g.Groups;
            int group = (int)(index - n * g.Groups);
            long first = n * g.Pixels * g.C + (long)group * g.PerGroup; // group's channels of pixel 0
            double count = (double)g.Pixels * g.PerGroup;
            double sum = 0;
            for (long p = 0; p < g.Pixels; p++)
            {
                long at = first + p * g.C;
                for (int j = 0; j < g.PerGroup; j++) sum += x[at + j];
            }
            double mean = sum / count;
            double squares = 0;
            for (long p = 0; p < g.Pixels; p++)
            {
                long at = first + p * g.C;
                for (int j = 0; j < g.PerGroup; j++)
                {
                    double d = x[at + j] - mean;
                    squares += d * d;
                }
            }
            double invStd = 1.0 / Math.Sqrt(squares / count + g.Eps);
            for (int j = 0; j < g.PerGroup; j++)
            {
                int ch = group * g.PerGroup + j;
                double a = (g.HasWeight != 0 ? gamma[ch] : 1.0) * invStd;
                double b = (g.HasBias != 0 ? beta[ch] : 0.0) - mean * a;
                ab[n * g.C + ch] = (float)a;
                ab[g.NC + n * g.C + ch] = (float)b;
            }
    
        }
    }

    // x, y: (N, P, C) (the same view in place), ab as above; one thread per value: y = x · a[n, c] + b[n, c].
    public static void Apply(Index1D thread, Work work, ArrayView<float> x, ArrayView<float> y, ArrayView<float> ab, GroupNormArgs g)
    {
        for (long index = thread; index < work.Count; index += work.Stride)
        {
            long pixel = index / g.C;
            int c = (int)(index - pixel * g.C);
            long n = pixel / g.Pixels;
            y[index] = x[index] * ab[n * g.C + c] + ab[g.NC + n * g.C + c];
    
        }
    }
}
