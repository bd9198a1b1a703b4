using System.Globalization;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>A file of class labels, one per sample: a <c>.npy</c> int64/int32 vector, or integers in text (commas or whitespace).</summary>
public static class LabelFile
{
    /// <summary>The labels; <paramref name="count"/>, when given, is the number the file must hold.</summary>
    public static long[] Read(string path, long? count = null)
    {
        long[] labels;
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            using var npy = NpyFile.Open(path);
            labels = IntegerVectors.Read(npy.Array, path, "labels");
            if (labels.Any(v => v < 0)) throw new TensorFileException(path, "labels must be >= 0");
        }
        else
        {
            var words = File.ReadAllText(path).Split([',', ' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries);
            labels = new long[words.Length];
            for (int i = 0; i < words.Length; i++)
                if (!long.TryParse(words[i], NumberStyles.None, CultureInfo.InvariantCulture, out labels[i]))
                    throw new TensorFileException(path, $"'{words[i]}' (entry {i}) is not a class index");
        }
        if (count is long n && labels.Length != n) throw new TensorFileException(path, $"holds {labels.Length} labels for {n} samples");
        return labels;
    }
}
