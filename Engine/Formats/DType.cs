namespace DyDiT.Eval.Engine.Formats;

/// <summary>Element types that appear in the files we read (numpy arrays, torch storages, safetensors).</summary>
public enum DType
{
    Bool,
    UInt8,
    Int8,
    Int16,
    Int32,
    Int64,
    Float16,
    BFloat16,
    Float32,
    Float64,
}

public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ItemSize(this DType t) => t switch
    {
        DType.Bool or DType.UInt8 or DType.Int8 => 1,
        DType.Int16 or DType.Float16 or DType.BFloat16 => 2,
        DType.Int32 or DType.Float32 => 4,
        DType.Int64 or DType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>numpy's name for the type (<c>float32</c>, <c>uint8</c>, <c>bool</c>, <c>bfloat16</c>, ...).</summary>
    public static string NumpyName(this DType t) => t switch
    {
        DType.Bool => "bool",
        DType.UInt8 => "uint8",
        DType.Int8 => "int8",
        DType.Int16 => "int16",
        DType.Int32 => "int32",
        DType.Int64 => "int64",
        DType.Float16 => "float16",
        DType.BFloat16 => "bfloat16",
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };
}
