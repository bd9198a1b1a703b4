using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>Inception features of N images, C order: pool [N,2048], spatial [N,2023], logits [N,1008] (no fc bias).</summary>
public sealed record InceptionFeatures(int Count, float[] Pool, float[] Spatial, float[] Logits)
{
    /// <summary>Writes the features file of DESIGN.md (<c>pool</c>, <c>spatial</c>, <c>logits</c>), atomically.</summary>
    public void Save(string path)
    {
        using var w = new NpzWriter(path);
        w.WriteArray<float>("pool", DType.Float32, [Count, FidInceptionV3.PoolFeatures], Pool);
        w.WriteArray<float>("spatial", DType.Float32, [Count, FidInceptionV3.SpatialFeatures], Spatial);
        w.WriteArray<float>("logits", DType.Float32, [Count, FidInceptionV3.Classes], Logits);
        w.Complete();
    }
}

/// <summary>
/// Streams an image batch (<c>arr_0</c>: uint8 [N,H,W,3], or float in 0..255 as ADM also accepts) through the
/// preprocessing and the FID Inception network, <paramref name="batchSize"/> images at a time (memory O(batch) for
/// the images; the features, 20 KB per image, are kept).
/// </summary>
public static class FeatureExtractor
{
    public const int DefaultBatchSize = 64;

    /// <summary>The images array of <paramref name="npz"/>, checked: (count, height, width).</summary>
    public static (NpyArray Images, int Count, int Height, int Width) Images(NpzArchive npz)
    {
        if (!npz.Contains("arr_0"))
            throw new TensorFileException(npz.Path, $"has no image array 'arr_0'; it holds: {string.Join(", ", npz.Arrays.Select(a => a.Name))}");
        var a = npz["arr_0"];
        bool dtypeOk = a.DType is DType.UInt8 or DType.Float32 or DType.Float64;
        if (!dtypeOk || a.Shape.Count != 4 || a.Shape[3] != 3 || a.Shape[1] < 1 || a.Shape[2] < 1)
            throw new TensorFileException(npz.Path,
                $"array 'arr_0' must be uint8 [N,H,W,3] images (or float in 0..255), found {a.DType.NumpyName()} [{string.Join(",", a.Shape)}]");
        if (a.Shape[0] > int.MaxValue) throw new TensorFileException(npz.Path, $"array 'arr_0' has {a.Shape[0]} images, more than supported");
        return (a, (int)a.Shape[0], (int)a.Shape[1], (int)a.Shape[2]);
    }

    public static InceptionFeatures Extract(string path, FidInceptionV3 network, PreprocessMode mode, int batchSize = DefaultBatchSize,
        IProgress<int>? imagesDone = null, CancellationToken cancel = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        using var npz = NpzArchive.Open(path);
        var (images, count, height, width) = Images(npz);
        var preprocess = new InceptionPreprocessing(mode);
        var pool = new float[(long)count * FidInceptionV3.PoolFeatures];
        var spatial = new float[(long)count * FidInceptionV3.SpatialFeatures];
        var logits = new float[(long)count * FidInceptionV3.Classes];
        int pixels = height * width * 3;
        int batch = Math.Min(batchSize, Math.Max(count, 1));
        var raw = new byte[(long)batch * pixels * images.DType.ItemSize()];
        var wide = new float[(long)batch * pixels];

        using var rows = images.OpenRows();
        for (int done = 0; done < count;)
        {
            cancel.ThrowIfCancellationRequested();
            int n = rows.ReadRows(raw, batchSize);
            var x = wide.AsSpan(0, n * pixels);
            if (images.DType == DType.UInt8)
                for (int i = 0; i < x.Length; i++) x[i] = raw[i];
            else
                ToFloat(images.DType, raw, x, path, done, pixels);
            // resize and normalisation run on the network's backend (InceptionPreprocessing.Spec), then the network
            var f = network.RunImages(x, n, height, width, preprocess);
            f.Pool.CopyTo(pool.AsSpan(done * FidInceptionV3.PoolFeatures));
            f.Spatial.CopyTo(spatial.AsSpan(done * FidInceptionV3.SpatialFeatures));
            f.Logits.CopyTo(logits.AsSpan(done * FidInceptionV3.Classes));
            done += n;
            imagesDone?.Report(done);
        }
        return new InceptionFeatures(count, pool, spatial, logits);
    }

    // Float images: widened to float32 and checked to lie in 0..255 (ADM feeds them to the graph as they are).
    private static void ToFloat(DType dtype, byte[] raw, Span<float> destination, string path, int firstImage, int pixels)
    {
        if (dtype == DType.Float32) MemoryMarshal.Cast<byte, float>(raw.AsSpan(0, destination.Length * 4)).CopyTo(destination);
        else
        {
            var d = MemoryMarshal.Cast<byte, double>(raw.AsSpan(0, destination.Length * 8));
            for (int i = 0; i < destination.Length; i++) destination[i] = (float)d[i];
        }
        for (int i = 0; i < destination.Length; i++)
        {
            float v = destination[i];
            if (!(v >= 0f && v <= 255f))
                throw new TensorFileException(path, $"array 'arr_0' holds {v} at image {firstImage + i / pixels}: float images must lie in 0..255 (uint8 scale)");
        }
    }
}
