using System.Buffers.Binary;
using System.Text;

namespace DyDiT.Eval.Engine.Formats.Npy;

/// <summary>
/// The header of a .npy array: <c>\x93NUMPY</c>, major, minor, header length (uint16 in v1, uint32 in v2/v3),
/// then a Python dict literal <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }</c>.
/// </summary>
public sealed record NpyHeader(DType DType, bool BigEndian, bool FortranOrder, long[] Shape, int Major, int Minor, long DataOffset)
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Longest header we accept (numpy itself refuses headers above 10 000 bytes by default).</summary>
    private const int MaxHeaderLength = 1 << 20;

    public long ElementCount => Shape.Aggregate(1L, (n, d) => checked(n * d));

    public long DataBytes => checked(ElementCount * DType.ItemSize());

    /// <summary>Reads and parses a header from the start of <paramref name="stream"/>, leaving it at the data.</summary>
    public static NpyHeader Read(Stream stream, string path)
    {
        Span<byte> pre = stackalloc byte[12];
        int got = stream.ReadAtLeast(pre[..10], 10, throwOnEndOfStream: false);
        if (got < 10 || !pre[..6].SequenceEqual(Magic))
            throw new TensorFileException(path, got < 6 ? "too short for an npy header" : "bad npy magic (expected \\x93NUMPY)");
        int major = pre[6], minor = pre[7];
        long headerLength;
        int prefix;
        switch (major)
        {
            case 1:
                headerLength = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]);
                prefix = 10;
                break;
            case 2 or 3:
                if (stream.ReadAtLeast(pre[10..12], 2, throwOnEndOfStream: false) < 2)
                    throw new TensorFileException(path, "npy header truncated");
                headerLength = BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
                prefix = 12;
                break;
            default:
                throw new TensorFileException(path, $"unsupported npy format version {major}.{minor} (known: 1.0, 2.0, 3.0)");
        }
        if (headerLength > MaxHeaderLength)
            throw new TensorFileException(path, $"npy header length {headerLength} is implausibly large");
        var text = new byte[headerLength];
        if (stream.ReadAtLeast(text, text.Length, throwOnEndOfStream: false) < text.Length)
            throw new TensorFileException(path, "npy header truncated");
        string dict;
        try
        {
            dict = (major == 3 ? new UTF8Encoding(false, true) : Encoding.Latin1).GetString(text);
        }
        catch (DecoderFallbackException)
        {
            throw new TensorFileException(path, "npy 3.0 header is not valid UTF-8");
        }
        return Parse(dict, path, major, minor, prefix + headerLength);
    }

    private static NpyHeader Parse(string dict, string path, int major, int minor, long dataOffset)
    {
        var p = new LiteralParser(dict, path);
        string? descr = null;
        bool? fortran = null;
        long[]? shape = null;
        p.Expect('{');
        while (!p.TryConsume('}'))
        {
            string key = p.String();
            p.Expect(':');
            switch (key)
            {
                case "descr": descr = p.Peek() == '[' ? throw new TensorFileException(path, "structured npy dtypes are not supported") : p.String(); break;
                case "fortran_order": fortran = p.Bool(); break;
                case "shape": shape = p.IntTuple(); break;
                default: throw new TensorFileException(path, $"unexpected key '{key}' in npy header");
            }
            if (!p.TryConsume(',')) { p.Expect('}'); break; }
        }
        if (descr is null || fortran is null || shape is null)
            throw new TensorFileException(path, "npy header lacks one of 'descr', 'fortran_order', 'shape'");
        var (dtype, bigEndian) = ParseDescr(descr, path);
        try
        {
            _ = shape.Aggregate(1L, (n, d) => checked(n * d * dtype.ItemSize()));
        }
        catch (OverflowException)
        {
            throw new TensorFileException(path, $"npy shape ({string.Join(", ", shape)}) is too large");
        }
        return new NpyHeader(dtype, bigEndian, fortran.Value, shape, major, minor, dataOffset);
    }

    /// <summary>numpy descr ('&lt;f4', '>i8', '|u1', '|b1') → our dtype and byte order.</summary>
    public static (DType DType, bool BigEndian) ParseDescr(string descr, string path)
    {
        if (descr.Length < 3 || "<>|=".IndexOf(descr[0]) < 0)
            throw new TensorFileException(path, $"unsupported npy dtype '{descr}'");
        DType? t = descr[1..] switch
        {
            "b1" => DType.Bool,
            "u1" => DType.UInt8,
            "i1" => DType.Int8,
            "i2" => DType.Int16,
            "i4" => DType.Int32,
            "i8" => DType.Int64,
            "f2" => DType.Float16,
            "f4" => DType.Float32,
            "f8" => DType.Float64,
            _ => null,
        };
        if (t is null)
            throw new TensorFileException(path, $"unsupported npy dtype '{descr}' (supported: b1 u1 i1 i2 i4 i8 f2 f4 f8)");
        return (t.Value, descr[0] == '>' && t.Value.ItemSize() > 1);
    }

    /// <summary>numpy's descr for a dtype we write (little-endian).</summary>
    public static string Descr(DType t) => t switch
    {
        DType.Bool => "|b1",
        DType.UInt8 => "|u1",
        DType.Int8 => "|i1",
        DType.Int16 => "<i2",
        DType.Int32 => "<i4",
        DType.Int64 => "<i8",
        DType.Float16 => "<f2",
        DType.Float32 => "<f4",
        DType.Float64 => "<f8",
        _ => throw new ArgumentException($"numpy has no {t.NumpyName()} dtype; convert before writing"),
    };

    /// <summary>
    /// A v1.0 header as numpy 1.24 writes it (v2.0 if it would not fit in 65535 bytes), padded with spaces and a
    /// final newline so that the data starts at a multiple of 64 bytes.
    /// </summary>
    public static byte[] Format(DType dtype, IReadOnlyList<long> shape)
    {
        string tuple = shape.Count switch
        {
            0 => "()",
            1 => $"({shape[0]},)",
            _ => "(" + string.Join(", ", shape) + ")",
        };
        string dict = $"{{'descr': '{Descr(dtype)}', 'fortran_order': False, 'shape': {tuple}, }}";
        // numpy leaves room for the first axis to grow to 21 digits in place, then pads to 64 bytes.
        if (shape.Count > 0) dict += new string(' ', Math.Max(0, 21 - shape[0].ToString(System.Globalization.CultureInfo.InvariantCulture).Length));
        int major = dict.Length + 11 > 0xFFFF ? 2 : 1;
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        var bytes = new byte[total];
        Magic.CopyTo(bytes, 0);
        bytes[6] = (byte)major;
        bytes[7] = 0;
        int headerLength = total - prefix;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)headerLength);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)headerLength);
        Encoding.ASCII.GetBytes(dict, bytes.AsSpan(prefix));
        bytes.AsSpan(prefix + dict.Length, headerLength - dict.Length - 1).Fill((byte)' ');
        bytes[^1] = (byte)'\n';
        return bytes;
    }

    /// <summary>Just enough of Python's literal syntax for npy headers.</summary>
    private ref struct LiteralParser(string text, string path)
    {
        private int _pos;

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        public char Peek()
        {
            SkipSpace();
            return _pos < text.Length ? text[_pos] : '\0';
        }

        public bool TryConsume(char c)
        {
            if (Peek() != c) return false;
            _pos++;
            return true;
        }

        public void Expect(char c)
        {
            if (!TryConsume(c)) throw Fail($"expected '{c}'");
        }

        public string String()
        {
            char q = Peek();
            if (q != '\'' && q != '"') throw Fail("expected a quoted string");
            int end = text.IndexOf(q, _pos + 1);
            if (end < 0) throw Fail("unterminated string");
            var s = text[(_pos + 1)..end];
            _pos = end + 1;
            return s;
        }

        public bool Bool()
        {
            SkipSpace();
            if (Word("True")) return true;
            if (Word("False")) return false;
            throw Fail("expected True or False");
        }

        public long[] IntTuple()
        {
            Expect('(');
            var dims = new List<long>();
            while (!TryConsume(')'))
            {
                SkipSpace();
                int start = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
                if (start == _pos || !long.TryParse(text.AsSpan(start, _pos - start), out long d))
                    throw Fail("expected a non-negative integer in the shape");
                dims.Add(d);
                if (!TryConsume(',')) { Expect(')'); break; }
            }
            return [.. dims];
        }

        private bool Word(string w)
        {
            if (string.CompareOrdinal(text, _pos, w, 0, w.Length) != 0) return false;
            _pos += w.Length;
            return true;
        }

        private readonly TensorFileException Fail(string what) =>
            new(path, $"malformed npy header: {what} at character {_pos} of \"{(text.Length > 200 ? text[..200] + "..." : text)}\"");
    }
}
