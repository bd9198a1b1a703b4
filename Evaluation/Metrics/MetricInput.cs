using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Tensors;
using FidInception = DyDiT.Eval.Evaluation.Inception.FidInceptionV3;

namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>
/// One side of an evaluation, read from an .npz: a features file (<c>pool</c> [N,D], optional <c>spatial</c>
/// [N,2023], optional <c>logits</c> [N,1008]) and/or ADM statistics (<c>mu</c>, <c>sigma</c>, optional <c>mu_s</c>,
/// <c>sigma_s</c>). When a file holds statistics, they are used for FID/sFID (as ADM does) and the features only
/// for precision/recall and the Inception Score.
/// </summary>
public sealed class MetricInput
{
    private MetricInput(string path) => Path = path;

    public string Path { get; }

    /// <summary>Pool features [Count, PoolDim] (C order), or null for a statistics-only file.</summary>
    public float[]? Pool { get; private set; }

    public int PoolDim { get; private set; }

    /// <summary>Number of feature rows, or null for a statistics-only file.</summary>
    public int? Count { get; private set; }

    /// <summary>Unbiased Inception logits [Count, 1008] (pool · W, no fc bias), if present.</summary>
    public float[]? Logits { get; private set; }

    public int LogitsDim { get; private set; }

    public FeatureStatistics? PoolStatistics { get; private set; }

    public FeatureStatistics? SpatialStatistics { get; private set; }

    public bool StatisticsWerePrecomputed { get; private set; }

    /// <summary>
    /// Reads one side. <paramref name="imageFeatures"/> turns an image batch (<c>arr_0</c>) into Inception features;
    /// without it an image batch with no features is an error asking for <c>--inception</c>. For ADM's reference
    /// batches (images and <c>mu</c>/<c>sigma</c>) the stored statistics are used for FID/sFID and the images' features
    /// for precision/recall, as ADM does.
    /// </summary>
    public static MetricInput Load(string path, Func<string, Inception.InceptionFeatures>? imageFeatures = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        using var npz = NpzArchive.Open(path);
        var input = new MetricInput(path);
        if (npz.Contains("mu"))
        {
            input.PoolStatistics = ReadStatistics(npz, "mu", "sigma");
            if (npz.Contains("mu_s") || npz.Contains("sigma_s")) input.SpatialStatistics = ReadStatistics(npz, "mu_s", "sigma_s");
            input.StatisticsWerePrecomputed = true;
        }
        if (npz.Contains("pool"))
        {
            var (pool, n, d) = ReadFeatures(npz, "pool", expectedColumns: null);
            input.Pool = pool;
            input.Count = n;
            input.PoolDim = d;
            if (n < 2) throw new TensorFileException(path, $"array 'pool' has {n} row(s); statistics need at least 2 samples");
            input.PoolStatistics ??= StatisticsAccumulator.Compute(pool, d);
            if (npz.Contains("spatial") && input.SpatialStatistics == null)
            {
                var (spatial, ns, ds) = ReadFeatures(npz, "spatial", expectedColumns: null);
                if (ns != n) throw new TensorFileException(path, $"array 'spatial' has {ns} rows but 'pool' has {n}");
                input.SpatialStatistics = StatisticsAccumulator.Compute(spatial, ds);
            }
            if (npz.Contains("logits"))
            {
                var (logits, nl, dl) = ReadFeatures(npz, "logits", expectedColumns: null);
                if (nl != n) throw new TensorFileException(path, $"array 'logits' has {nl} rows but 'pool' has {n}");
                input.Logits = logits;
                input.LogitsDim = dl;
            }
        }
        else if (npz.Contains("arr_0") && imageFeatures != null)
        {
            Inception.FeatureExtractor.Images(npz); // checks dtype and shape before any work
            var f = imageFeatures(path);
            if (f.Count < 2) throw new TensorFileException(path, $"array 'arr_0' has {f.Count} image(s); statistics need at least 2 samples");
            CheckFinite(path, "pool (Inception features of arr_0)", f.Pool, FidInception.PoolFeatures);
            input.Pool = f.Pool;
            input.Count = f.Count;
            input.PoolDim = FidInception.PoolFeatures;
            input.Logits = f.Logits;
            input.LogitsDim = FidInception.Classes;
            input.PoolStatistics ??= StatisticsAccumulator.Compute(f.Pool, FidInception.PoolFeatures);
            input.SpatialStatistics ??= StatisticsAccumulator.Compute(f.Spatial, FidInception.SpatialFeatures);
        }
        if (input.PoolStatistics == null)
        {
            if (npz.Contains("arr_0"))
                throw new TensorFileException(path, "holds images (arr_0) but no features or statistics: pass --inception pt_inception-2015-12-05-6726825d.pth to compute them (or run 'dydit-eval features' first)");
            throw new TensorFileException(path, $"has neither features ('pool') nor statistics ('mu', 'sigma'); it holds: {string.Join(", ", npz.Arrays.Select(a => a.Name))}");
        }
        return input;
    }

    private static void CheckFinite(string path, string name, float[] values, int columns)
    {
        int bad = Array.FindIndex(values, v => !float.IsFinite(v));
        if (bad >= 0)
            throw new TensorFileException(path, $"{name} holds a non-finite value ({values[bad]}) at row {bad / columns}, column {bad % columns}");
    }

    private static (float[] Values, int Rows, int Columns) ReadFeatures(NpzArchive npz, string name, int? expectedColumns)
    {
        var a = npz[name];
        if (a.Shape.Count != 2)
            throw new TensorFileException(npz.Path, $"array '{name}' must be 2-D [N, D], got shape ({string.Join(", ", a.Shape)})");
        if (expectedColumns is int c && a.Shape[1] != c)
            throw new TensorFileException(npz.Path, $"array '{name}' must have {c} columns, got {a.Shape[1]}");
        var values = a.ToFloat32();
        int bad = Array.FindIndex(values, v => !float.IsFinite(v));
        if (bad >= 0)
            throw new TensorFileException(npz.Path, $"array '{name}' holds a non-finite value ({values[bad]}) at row {bad / a.Shape[1]}, column {bad % a.Shape[1]}");
        return (values, checked((int)a.Shape[0]), checked((int)a.Shape[1]));
    }

    private static FeatureStatistics ReadStatistics(NpzArchive npz, string muName, string sigmaName)
    {
        if (!npz.Contains(muName) || !npz.Contains(sigmaName))
            throw new TensorFileException(npz.Path, $"statistics need both '{muName}' and '{sigmaName}'");
        var mu = npz[muName];
        var sigma = npz[sigmaName];
        if (mu.Shape.Count != 1)
            throw new TensorFileException(npz.Path, $"array '{muName}' must be 1-D, got shape ({string.Join(", ", mu.Shape)})");
        int d = checked((int)mu.Shape[0]);
        if (sigma.Shape.Count != 2 || sigma.Shape[0] != d || sigma.Shape[1] != d)
            throw new TensorFileException(npz.Path, $"array '{sigmaName}' must be [{d}, {d}] to match '{muName}', got shape ({string.Join(", ", sigma.Shape)})");
        var muValues = ToDouble(mu);
        var sigmaValues = ToDouble(sigma);
        if (muValues.Any(v => !double.IsFinite(v))) throw new TensorFileException(npz.Path, $"array '{muName}' holds non-finite values");
        if (sigmaValues.Any(v => !double.IsFinite(v))) throw new TensorFileException(npz.Path, $"array '{sigmaName}' holds non-finite values");
        double scale = sigmaValues.Max(Math.Abs);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < i; j++)
                if (Math.Abs(sigmaValues[i * d + j] - sigmaValues[j * d + i]) > 1e-9 * Math.Max(scale, 1e-300))
                    throw new TensorFileException(npz.Path, $"array '{sigmaName}' is not symmetric: [{i},{j}] = {sigmaValues[i * d + j]} but [{j},{i}] = {sigmaValues[j * d + i]}");
        return new FeatureStatistics(muValues, MuIsFloat32: mu.DType == DType.Float32, sigmaValues, d, Count: null);
    }

    private static double[] ToDouble(StoredTensor t)
    {
        if (t.DType == DType.Float64)
        {
            var bytes = t.ReadAllBytes();
            var result = new double[t.ElementCount];
            Buffer.BlockCopy(bytes, 0, result, 0, bytes.Length);
            return result;
        }
        return Array.ConvertAll(t.ToFloat32(), v => (double)v);
    }
}
