using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace DyDiT.Eval.Engine.Formats.Png;

/// <summary>
/// Encodes 8-bit RGB images (PNG colour type 2, no interlace) as PNG: signature, IHDR, IDAT chunks of at most
/// <see cref="IdatChunkBytes"/> bytes, IEND, each chunk with its CRC-32 over type and data. There is no imaging
/// library in the solution and PNG is the one lossless format every browser and viewer shows, so sample grids
/// are written with this. Each scanline gets the filter (None, Sub, Up, Average or Paeth) whose output has the
/// smallest sum of absolute signed bytes — the usual heuristic, which makes the smooth images diffusion models
/// produce compress well — and the filtered stream is deflated by <see cref="ZLibStream"/>. Memory is O(one
/// scanline + one chunk) besides the caller's pixels; the output depends only on the pixels and the level.
/// </summary>
public static class PngWriter
{
    /// <summary>Bytes per pixel: R, G, B.</summary>
    public const int Channels = 3;

    /// <summary>The most data one IDAT chunk holds; larger images get several (decoders concatenate them).</summary>
    public const int IdatChunkBytes = 1 << 16;

    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// Writes <paramref name="rgb"/> — <paramref name="height"/> rows of <paramref name="width"/> pixels, each R, G, B
    /// (the layout of one ADM sample, <c>arr_0[i]</c>, H×W×3 uint8) — to <paramref name="destination"/> as a PNG.
    /// </summary>
    public static void Write(Stream destination, ReadOnlySpan<byte> rgb, int width, int height, CompressionLevel level = CompressionLevel.Optimal)
    {
        ArgumentNullException.ThrowIfNull(destination);
        int stride = CheckSize(rgb.Length, width, height);
        destination.Write(Signature);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = 8;  // bit depth
        header[9] = 2;  // colour type: truecolour (RGB)
        header[10] = 0; // compression: deflate
        header[11] = 0; // filter method: adaptive (the five per-row filters)
        header[12] = 0; // no interlace
        WriteChunk(destination, "IHDR"u8, header);

        using (var idat = new IdatStream(destination))
        {
            using (var zlib = new ZLibStream(idat, level, leaveOpen: true))
            {
                // candidates: [filter byte + stride] for each of the five filters
                var candidates = new byte[5 * (stride + 1)];
                var zeros = new byte[stride];
                for (int y = 0; y < height; y++)
                {
                    var row = rgb.Slice(y * stride, stride);
                    var above = y == 0 ? zeros : rgb.Slice((y - 1) * stride, stride);
                    zlib.Write(FilterRow(row, above, candidates));
                }
            }
            idat.EmitChunk();
        }
        WriteChunk(destination, "IEND"u8, []);
    }

    /// <summary>The PNG file's bytes (see <see cref="Write"/>).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> rgb, int width, int height, CompressionLevel level = CompressionLevel.Optimal)
    {
        var ms = new MemoryStream();
        Write(ms, rgb, width, height, level);
        return ms.ToArray();
    }

    /// <summary>
    /// Writes the PNG to <paramref name="path"/> through a temporary file in the same folder renamed into place, so a
    /// reader (a browser refreshing a report) never sees half an image.
    /// </summary>
    public static void Save(string path, ReadOnlySpan<byte> rgb, int width, int height, CompressionLevel level = CompressionLevel.Optimal)
    {
        var full = Path.GetFullPath(path);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                Write(fs, rgb, width, height, level);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    private static int CheckSize(int length, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"a PNG needs a positive width and height, not {width}×{height}");
        long stride = (long)width * Channels;
        if (stride + 1 > Array.MaxLength / 5)
            throw new ArgumentException($"width {width} is too large for one scanline buffer");
        if (length != stride * height)
            throw new ArgumentException($"{length} bytes are not a {width}×{height} RGB image ({stride * height} bytes: rows of width·3, R G B per pixel)");
        return (int)stride;
    }

    /// <summary>
    /// Fills the five filtered versions of <paramref name="row"/> (filter byte first) and returns the one whose bytes,
    /// read as signed, have the smallest absolute sum. For the first row <paramref name="above"/> is zeros, as the
    /// PNG specification defines the row above the image.
    /// </summary>
    private static ReadOnlySpan<byte> FilterRow(ReadOnlySpan<byte> row, ReadOnlySpan<byte> above, Span<byte> candidates)
    {
        int n = row.Length, size = n + 1, best = 0;
        long bestCost = long.MaxValue;
        for (int filter = 0; filter < 5; filter++)
        {
            var output = candidates.Slice(filter * size, size);
            output[0] = (byte)filter;
            var filtered = output[1..];
            long cost = 0;
            for (int i = 0; i < n; i++)
            {
                int a = i >= Channels ? row[i - Channels] : 0, b = above[i], c = i >= Channels ? above[i - Channels] : 0;
                int predictor = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) >> 1,
                    _ => Paeth(a, b, c),
                };
                byte v = (byte)(row[i] - predictor);
                filtered[i] = v;
                cost += Math.Abs((int)(sbyte)v);
            }
            if (cost < bestCost)
            {
                bestCost = cost;
                best = filter;
            }
        }
        return candidates.Slice(best * size, size);
    }

    // The PNG specification's Paeth predictor: whichever of left, up, upper-left is closest to left + up − upper-left (ties in that order).
    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    private static void WriteChunk(Stream destination, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        destination.Write(word);
        destination.Write(type);
        destination.Write(data);
        var crc = new Crc32(); // CRC-32/ISO-HDLC, the polynomial PNG specifies, over type and data (not the length)
        crc.Append(type);
        crc.Append(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, crc.GetCurrentHashAsUInt32());
        destination.Write(word);
    }

    /// <summary>Collects the zlib stream and cuts it into IDAT chunks of at most <see cref="IdatChunkBytes"/> bytes.</summary>
    private sealed class IdatStream(Stream destination) : Stream
    {
        private readonly byte[] _buffer = new byte[IdatChunkBytes];
        private int _used;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                int n = Math.Min(buffer.Length, _buffer.Length - _used);
                buffer[..n].CopyTo(_buffer.AsSpan(_used));
                _used += n;
                buffer = buffer[n..];
                if (_used == _buffer.Length) EmitChunk();
            }
        }

        /// <summary>Writes what is buffered as one IDAT chunk (nothing when empty).</summary>
        public void EmitChunk()
        {
            if (_used == 0) return;
            WriteChunk(destination, "IDAT"u8, _buffer.AsSpan(0, _used));
            _used = 0;
        }

        public override void Flush() { } // chunks are cut by size; the caller emits the last one after zlib's trailer
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
