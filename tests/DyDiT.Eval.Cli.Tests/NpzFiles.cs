using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>Builds small .npz inputs for CLI tests from raw arrays.</summary>
internal static class NpzFiles
{
    public static string Write(string directory, string name, params (string Array, DType DType, long[] Shape, byte[] Bytes)[] arrays)
    {
        var path = Path.Combine(directory, name);
        using var w = new NpzWriter(path);
        foreach (var (array, dtype, shape, bytes) in arrays)
        {
            w.BeginArray(array, dtype, shape);
            w.Write(bytes.AsSpan());
            w.EndArray();
        }
        w.Complete();
        return path;
    }

    /// <summary>A stored array under a new name.</summary>
    public static (string Array, DType DType, long[] Shape, byte[] Bytes) As(string name, StoredTensor t) =>
        (name, t.DType, t.Shape.ToArray(), t.ReadAllBytes());
}
