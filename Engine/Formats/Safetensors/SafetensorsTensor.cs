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
}
