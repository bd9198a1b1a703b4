using System.Buffers;
using DyDiT.Eval.Engine.Formats.Torch;

namespace DyDiT.Eval.Engine.Formats.Safetensors;

/// <summary>One tensor of a <see cref="SafetensorsFile"/>: contiguous C-order little-endian bytes in the mapped file.</summary>
public sealed class SafetensorsTensor : StoredTensor
{
    private const int ChunkBytes = 1 << 20;
    private readonly MappedFile _file;

    internal SafetensorsTensor(MappedFile file, string name, long[] shape, DType dtype, long dataOffset)
        : base(name, shape, dtype)
    {
        _file = file;
        DataOffset = dataOffset;
    }

    /// <summary>Absolute file offset of the first byte.</summary>
    public long DataOffset { get; }

    public override void CopyValuesTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (ByteCount == 0) return;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(ByteCount, ChunkBytes));
        try
        {
            for (long done = 0; done < ByteCount;)
            {
                int n = (int)Math.Min(ChunkBytes, ByteCount - done);
                _file.Read(DataOffset + done, buffer.AsSpan(0, n));
                destination.Write(buffer, 0, n);
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>All values converted to float32 in C order.</summary>
    public float[] ToFloat32()
    {
        if (ElementCount > Array.MaxLength)
            throw new InvalidOperationException($"tensor '{Name}' has {ElementCount} elements, too many for one array");
        var result = new float[ElementCount];
        CopyToFloat32(result);
        return result;
    }

    /// <summary>Writes all values, converted to float32, into <paramref name="destination"/> (exactly <see cref="StoredTensor.ElementCount"/> long).</summary>
    public void CopyToFloat32(Span<float> destination)
    {
        if (destination.Length != ElementCount)
            throw new ArgumentException($"tensor '{Name}' has {ElementCount} elements but the destination holds {destination.Length}", nameof(destination));
        int isz = DType.ItemSize();
        int perChunk = ChunkBytes / isz;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)perChunk * isz, Math.Max(1, ByteCount)));
        try
        {
            for (long first = 0; first < ElementCount; first += perChunk)
            {
                int count = (int)Math.Min(perChunk, ElementCount - first);
                var bytes = buffer.AsSpan(0, count * isz);
                _file.Read(DataOffset + first * isz, bytes);
                Float32Conversion.Convert(DType, bytes, destination.Slice((int)first, count));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
