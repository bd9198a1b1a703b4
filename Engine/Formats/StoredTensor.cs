namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// One array or tensor inside a file, not yet read. Every reader (npy, npz, torch zip/legacy, safetensors)
/// exposes its contents as these, so tools such as <c>inspect</c> treat all formats alike.
/// </summary>
public abstract class StoredTensor
{
    protected StoredTensor(string name, long[] shape, DType dtype)
    {
        Name = name;
        Shape = shape;
        DType = dtype;
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        ElementCount = n;
    }

    /// <summary>npz member name without <c>.npy</c>, "" for a lone .npy, '/'-joined key path in a checkpoint.</summary>
    public string Name { get; }

    public IReadOnlyList<long> Shape { get; }

    public DType DType { get; }

    public long ElementCount { get; }

    public long ByteCount => ElementCount * DType.ItemSize();

    /// <summary>
    /// Writes the values as contiguous C-order little-endian bytes (strides, offsets, Fortran order and byte
    /// order already applied), streaming in bounded chunks so that multi-GB arrays need no big buffer.
    /// </summary>
    public abstract void CopyValuesTo(Stream destination);

    /// <summary>All values converted to float32 in C order (float16, bfloat16, float64 and integers widen or round).</summary>
    public float[] ToFloat32()
    {
        if (ElementCount > Array.MaxLength)
            throw new InvalidOperationException($"tensor '{Name}' has {ElementCount} elements, too many for one array");
        var result = new float[ElementCount];
        CopyToFloat32(result);
        return result;
    }

    /// <summary>Writes all values, converted to float32, in C order into <paramref name="destination"/> (exactly <see cref="ElementCount"/> long).</summary>
    public unsafe void CopyToFloat32(Span<float> destination)
    {
        if (destination.Length != ElementCount)
            throw new ArgumentException($"tensor '{Name}' has {ElementCount} elements but the destination holds {destination.Length}", nameof(destination));
        fixed (float* p = destination)
        {
            using var sink = new Float32Sink(DType, p, destination.Length);
            CopyValuesTo(sink);
            if (sink.Converted != destination.Length)
                throw new InvalidOperationException($"tensor '{Name}' produced {sink.Converted} of {destination.Length} values");
        }
    }

    /// <summary>All values as C-order little-endian bytes. Only for arrays that fit in memory.</summary>
    public byte[] ReadAllBytes()
    {
        var ms = new MemoryStream(checked((int)ByteCount));
        CopyValuesTo(ms);
        return ms.ToArray();
    }
}
