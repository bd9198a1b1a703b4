using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace DyDiT.Eval.Engine.Formats.Npy;

/// <summary>
/// One .npy array (a lone file or an npz member), read on demand. <see cref="CopyValuesTo"/> yields C-order
/// little-endian bytes whatever the file's byte order or <c>fortran_order</c>; <see cref="OpenRows"/> streams
/// the array in batches of rows (first axis) with memory O(batch).
/// </summary>
public sealed class NpyArray : StoredTensor
{
    private const int ChunkBytes = 1 << 20;
    private readonly Func<Stream> _openData;
    private readonly string _path;
    private readonly MemberCrc? _crc;

    internal NpyArray(string path, string name, NpyHeader header, Func<Stream> openData, MemberCrc? crc)
        : base(name, header.Shape, header.DType)
    {
        _path = path;
        Header = header;
        _openData = openData;
        _crc = crc;
    }

    public NpyHeader Header { get; }

    public override void CopyValuesTo(Stream destination)
    {
        if (Header.FortranOrder && Shape.Count > 1)
        {
            var cOrder = FortranToC(ReadRaw());
            destination.Write(cOrder);
            return;
        }
        using var src = _openData();
        var check = _crc?.Start();
        var buffer = new byte[(int)Math.Min(ChunkBytes - ChunkBytes % Math.Max(1, DType.ItemSize()), Math.Max(ByteCount, 1))];
        long left = ByteCount;
        while (left > 0)
        {
            int n = (int)Math.Min(buffer.Length, left);
            Fill(src, buffer.AsSpan(0, n), ByteCount - left);
            check?.Append(buffer.AsSpan(0, n));
            SwapIfNeeded(buffer.AsSpan(0, n));
            destination.Write(buffer, 0, n);
            left -= n;
        }
        _crc?.Verify(check!, _path, DisplayName);
    }

    /// <summary>Streams the array in row batches (rows = first axis). For Fortran-order arrays the whole array is read first.</summary>
    public NpyRowReader OpenRows()
    {
        if (Shape.Count == 0) throw new TensorFileException(_path, $"array '{Name}' is 0-d and has no rows");
        long rowBytes = ByteCount / Math.Max(1, Shape[0]);
        if (Shape[0] == 0) rowBytes = Shape.Skip(1).Aggregate((long)DType.ItemSize(), (a, d) => a * d);
        if (Header.FortranOrder && Shape.Count > 1)
            return new NpyRowReader(this, new MemoryStream(FortranToC(ReadRaw())), rowBytes, crc: null);
        return new NpyRowReader(this, _openData(), rowBytes, _crc);
    }

    internal void Fill(Stream src, Span<byte> destination, long alreadyRead)
    {
        try
        {
            int got = src.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            if (got < destination.Length)
                throw new TensorFileException(_path, $"array '{DisplayName}' is truncated: expected {ByteCount} data bytes for shape ({string.Join(", ", Shape)}), found {alreadyRead + got}");
        }
        catch (InvalidDataException e)
        {
            throw new TensorFileException(_path, $"array '{DisplayName}': corrupt deflate data ({e.Message})", e);
        }
    }

    internal void SwapIfNeeded(Span<byte> bytes)
    {
        if (!Header.BigEndian) return;
        switch (DType.ItemSize())
        {
            case 2: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ushort>(bytes), MemoryMarshal.Cast<byte, ushort>(bytes)); break;
            case 4: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, uint>(bytes), MemoryMarshal.Cast<byte, uint>(bytes)); break;
            case 8: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ulong>(bytes), MemoryMarshal.Cast<byte, ulong>(bytes)); break;
        }
    }

    internal string DisplayName => Name == "" ? "(array)" : Name;

    internal string FilePath => _path;

    private byte[] ReadRaw()
    {
        if (ByteCount > Array.MaxLength)
            throw new TensorFileException(_path, $"Fortran-order array '{DisplayName}' of {ByteCount} bytes is too large to reorder in memory");
        var raw = new byte[ByteCount];
        using var src = _openData();
        Fill(src, raw, 0);
        if (_crc != null)
        {
            var check = _crc.Start();
            check.Append(raw);
            _crc.Verify(check, _path, DisplayName);
        }
        SwapIfNeeded(raw);
        return raw;
    }

    // Fortran order: element (i0, ..., ik) sits at Σ i_j · (s_0 ⋯ s_{j-1}). Walk C order, gather from there.
    private byte[] FortranToC(byte[] f)
    {
        int rank = Shape.Count, size = DType.ItemSize();
        var c = new byte[f.Length];
        var fStride = new long[rank];
        long s = 1;
        for (int j = 0; j < rank; j++) { fStride[j] = s; s *= Shape[j]; }
        var index = new long[rank];
        long fOffset = 0;
        for (long e = 0; e < ElementCount; e++)
        {
            Buffer.BlockCopy(f, (int)(fOffset * size), c, (int)(e * size), size);
            for (int j = rank - 1; j >= 0; j--)
            {
                index[j]++;
                fOffset += fStride[j];
                if (index[j] < Shape[j]) break;
                fOffset -= index[j] * fStride[j];
                index[j] = 0;
            }
        }
        return c;
    }

    /// <summary>Opens the data of an npy stream whose header starts at the beginning of what <paramref name="openRaw"/> returns.</summary>
    internal static NpyArray Create(string path, string name, Func<Stream> openRaw, long rawLength, uint? expectedCrc = null)
    {
        NpyHeader header;
        using (var s = openRaw())
        {
            try
            {
                header = NpyHeader.Read(s, path);
            }
            catch (InvalidDataException e)
            {
                throw new TensorFileException(path, $"member '{name}': corrupt deflate data ({e.Message})", e);
            }
            catch (TensorFileException e) when (name != "")
            {
                // The header fault, said of the npz member that has it.
                throw new TensorFileException(path, $"member '{name}': {e.Fault}", e);
            }
        }
        long available = rawLength - header.DataOffset;
        if (available != header.DataBytes)
            throw new TensorFileException(path,
                $"{(name == "" ? "npy" : $"member '{name}'")}: header says shape ({string.Join(", ", header.Shape)}) of {header.DType.NumpyName()} = {header.DataBytes} bytes, but {Math.Max(0, available)} data bytes follow");
        MemberCrc? crc = null;
        if (expectedCrc is uint expected)
        {
            var headerBytes = new byte[header.DataOffset];
            using var s = openRaw();
            s.ReadExactly(headerBytes);
            crc = new MemberCrc(expected, headerBytes);
        }
        return new NpyArray(path, name, header, () =>
        {
            var s = openRaw();
            if (s.CanSeek) s.Seek(header.DataOffset, SeekOrigin.Begin);
            else SkipExactly(s, header.DataOffset);
            return s;
        }, crc);
    }

    private static void SkipExactly(Stream s, long count)
    {
        var buf = new byte[(int)Math.Min(count, 1 << 16)];
        while (count > 0)
        {
            int n = s.Read(buf, 0, (int)Math.Min(buf.Length, count));
            if (n == 0) throw new EndOfStreamException();
            count -= n;
        }
    }

    internal static Stream Inflate(Stream compressed) => new DeflateStream(compressed, CompressionMode.Decompress);
}

/// <summary>Reads an array in batches of whole rows (first axis), C order, little-endian.</summary>
public sealed class NpyRowReader : IDisposable
{
    private readonly NpyArray _array;
    private readonly Stream _data;
    private readonly MemberCrc? _crc;
    private readonly System.IO.Hashing.Crc32? _check;

    internal NpyRowReader(NpyArray array, Stream data, long rowBytes, MemberCrc? crc)
    {
        _array = array;
        _data = data;
        RowBytes = rowBytes;
        _crc = crc;
        _check = crc?.Start();
    }

    /// <summary>Rows in the array (its first dimension).</summary>
    public long Rows => _array.Shape[0];

    /// <summary>Bytes in one row: product of the other dimensions × item size.</summary>
    public long RowBytes { get; }

    public long RowsRead { get; private set; }

    /// <summary>
    /// Reads up to <paramref name="maxRows"/> rows (fewer at the end; 0 when done) into <paramref name="destination"/>,
    /// which must hold them. Returns the number of rows read.
    /// </summary>
    public int ReadRows(Span<byte> destination, int maxRows)
    {
        int rows = (int)Math.Min(maxRows, Rows - RowsRead);
        if (rows <= 0) return 0;
        long bytes = rows * RowBytes;
        if (bytes > destination.Length) throw new ArgumentException($"destination holds {destination.Length} bytes, {rows} rows need {bytes}");
        var span = destination[..(int)bytes];
        _array.Fill(_data, span, RowsRead * RowBytes);
        _check?.Append(span);
        _array.SwapIfNeeded(span);
        RowsRead += rows;
        if (RowsRead == Rows && _crc != null) _crc.Verify(_check!, _array.FilePath, _array.DisplayName);
        return rows;
    }

    public void Dispose() => _data.Dispose();
}

/// <summary>
/// The CRC-32 a zip member must have (as Python's zipfile checks it): header bytes first, then the data as read.
/// Checked whenever a member has been read to its end, so flipped bits in a sample batch cannot go unnoticed.
/// </summary>
internal sealed class MemberCrc(uint expected, byte[] headerBytes)
{
    public System.IO.Hashing.Crc32 Start()
    {
        var crc = new System.IO.Hashing.Crc32();
        crc.Append(headerBytes);
        return crc;
    }

    public void Verify(System.IO.Hashing.Crc32 crc, string path, string name)
    {
        uint actual = crc.GetCurrentHashAsUInt32();
        if (actual != expected)
            throw new TensorFileException(path, $"member '{name}' fails its CRC-32 check (stored {expected:x8}, computed {actual:x8}): the file is corrupted");
    }
}
