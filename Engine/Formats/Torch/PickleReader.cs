using System.Buffers.Binary;
using System.Text;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>Bounds-checked cursor over pickle bytes: every read that would run past the end is a file fault.</summary>
internal ref struct PickleReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _path;

    public PickleReader(ReadOnlySpan<byte> data, string path)
    {
        _data = data;
        _path = path;
        Position = 0;
    }

    public int Position { get; private set; }

    public readonly int Remaining => _data.Length - Position;

    public readonly TensorFileException Fail(string fault) => new(_path, $"pickle: {fault} (at byte {Position})");

    public byte Byte()
    {
        if (Remaining < 1) throw Fail("truncated: opcode or argument expected");
        return _data[Position++];
    }

    public ReadOnlySpan<byte> Bytes(long count, string what)
    {
        if (count < 0 || count > Remaining)
            throw Fail($"{what} claims {count} bytes but only {Remaining} remain");
        var s = _data.Slice(Position, (int)count);
        Position += (int)count;
        return s;
    }

    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, "2-byte argument"));

    public int I32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4, "4-byte argument"));

    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, "4-byte argument"));

    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, "8-byte argument"));

    public double F64BigEndian() => BinaryPrimitives.ReadDoubleBigEndian(Bytes(8, "BINFLOAT"));

    /// <summary>A protocol-0 text argument: bytes up to (not including) the next newline.</summary>
    public ReadOnlySpan<byte> Line(string what)
    {
        int nl = _data[Position..].IndexOf((byte)'\n');
        if (nl < 0) throw Fail($"{what} is not terminated by a newline");
        var s = _data.Slice(Position, nl);
        Position += nl + 1;
        return s;
    }

    public readonly string Utf8(ReadOnlySpan<byte> bytes, string what)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Fail($"{what} is not valid UTF-8");
        }
    }
}
