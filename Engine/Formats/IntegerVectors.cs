using System.Runtime.InteropServices;

namespace DyDiT.Eval.Engine.Formats;

/// <summary>Reads 1-D integer arrays (timesteps, labels) given by users as int64 or int32.</summary>
public static class IntegerVectors
{
    /// <summary>The values of <paramref name="a"/> widened to int64; <paramref name="what"/> names it in the error.</summary>
    public static long[] Read(StoredTensor a, string path, string what)
    {
        if (a.Shape.Count != 1 || a.DType is not (DType.Int64 or DType.Int32))
            throw new TensorFileException(path, $"{what} must be int64 or int32 [N], found {a.DType.NumpyName()} [{string.Join(",", a.Shape)}]");
        var bytes = a.ReadAllBytes();
        return a.DType == DType.Int64
            ? MemoryMarshal.Cast<byte, long>(bytes).ToArray()
            : Array.ConvertAll(MemoryMarshal.Cast<byte, int>(bytes).ToArray(), v => (long)v);
    }
}
