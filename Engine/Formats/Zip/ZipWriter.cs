using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace DyDiT.Eval.Engine.Formats.Zip;

/// <summary>
/// Writes a zip archive of stored (uncompressed) members, one after another, each streamed in pieces without
/// knowing its size in advance. Every local header carries a ZIP64 extra field (as numpy's writer does), patched
/// with the real sizes and CRC-32 when the member ends; the central directory and end records switch to ZIP64
/// whenever a size, an offset or the member count passes the classic limits. Timestamps are fixed
/// (1980-01-01 00:00), so the same members in the same order give the same bytes. A member may ask for its data to
/// start at a multiple of some alignment (torch.save aligns every record to 64 bytes so that storages can be
/// memory-mapped); the gap is filled by a padding extra field after the ZIP64 one, as PyTorch's writer pads.
/// </summary>
internal sealed class ZipWriter
{
    private const ushort VersionZip64 = 45;
    private const ushort DosDate1980 = (0 << 9) | (1 << 5) | 1;
    private const uint Saturated = 0xFFFFFFFF;

    private readonly Stream _out;
    private readonly List<Entry> _entries = [];
    private Entry? _open;
    private readonly Crc32 _crc = new();

    private sealed class Entry(string name, long offset)
    {
        public string Name { get; } = name;
        public long LocalHeaderOffset { get; } = offset;
        public long Size { get; set; }
        public uint Crc { get; set; }
    }

    /// <param name="output">A seekable stream positioned at its start.</param>
    public ZipWriter(Stream output)
    {
        if (!output.CanSeek) throw new ArgumentException("ZipWriter needs a seekable stream", nameof(output));
        _out = output;
    }

    /// <summary>Extra-field id of the alignment padding: the bytes "FB", the id PyTorch's zip writer uses for it.</summary>
    internal const ushort PaddingFieldId = 0x4246;

    /// <param name="name">Member name (UTF-8).</param>
    /// <param name="alignment">The member's data starts at a file offset that is a multiple of this (1 = no padding).</param>
    public void BeginEntry(string name, int alignment = 1)
    {
        if (_open != null) throw new InvalidOperationException($"entry '{_open.Name}' is still open");
        if (_entries.Any(e => e.Name == name)) throw new ArgumentException($"duplicate zip member '{name}'");
        if (alignment < 1 || alignment > 0x8000) throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "must be in [1, 32768]");
        _open = new Entry(name, _out.Position);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        int padding = 0;
        if (alignment > 1)
        {
            // a padding field has a 4-byte header of its own, so it is always present when aligning
            long unpadded = _out.Position + 30 + nameBytes.Length + 20 + 4;
            padding = (int)((alignment - unpadded % alignment) % alignment);
        }
        int extraLength = 20 + (alignment > 1 ? 4 + padding : 0);
        var h = new byte[30 + nameBytes.Length + extraLength];
        var s = h.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], VersionZip64);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], (ushort)(nameBytes.Any(b => b >= 0x80) ? 1 << 11 : 0));
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], 0);         // stored
        BinaryPrimitives.WriteUInt16LittleEndian(s[10..], 0);        // time 00:00
        BinaryPrimitives.WriteUInt16LittleEndian(s[12..], DosDate1980);
        // CRC (14) patched later; sizes say "see the ZIP64 field".
        BinaryPrimitives.WriteUInt32LittleEndian(s[18..], Saturated);
        BinaryPrimitives.WriteUInt32LittleEndian(s[22..], Saturated);
        BinaryPrimitives.WriteUInt16LittleEndian(s[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)extraLength);
        nameBytes.CopyTo(s[30..]);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(30 + nameBytes.Length)..], 0x0001);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(32 + nameBytes.Length)..], 16);
        if (alignment > 1)
        {
            var pad = s[(30 + nameBytes.Length + 20)..];
            BinaryPrimitives.WriteUInt16LittleEndian(pad, PaddingFieldId);
            BinaryPrimitives.WriteUInt16LittleEndian(pad[2..], (ushort)padding);
            pad[4..].Fill((byte)'Z');
        }
        _out.Write(h);
        _crc.Reset();
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        var e = _open ?? throw new InvalidOperationException("no open entry");
        _out.Write(data);
        _crc.Append(data);
        e.Size += data.Length;
    }

    public void EndEntry()
    {
        var e = _open ?? throw new InvalidOperationException("no open entry");
        e.Crc = _crc.GetCurrentHashAsUInt32();
        long end = _out.Position;
        int nameLength = Encoding.UTF8.GetByteCount(e.Name);
        Span<byte> buf = stackalloc byte[16];
        _out.Position = e.LocalHeaderOffset + 14;
        BinaryPrimitives.WriteUInt32LittleEndian(buf, e.Crc);
        _out.Write(buf[..4]);
        _out.Position = e.LocalHeaderOffset + 30 + nameLength + 4;
        BinaryPrimitives.WriteUInt64LittleEndian(buf, (ulong)e.Size);       // uncompressed
        BinaryPrimitives.WriteUInt64LittleEndian(buf[8..], (ulong)e.Size);  // compressed
        _out.Write(buf);
        _out.Position = end;
        _entries.Add(e);
        _open = null;
    }

    /// <summary>Writes the central directory and end records. The stream is left open.</summary>
    public void Finish()
    {
        if (_open != null) throw new InvalidOperationException($"entry '{_open.Name}' is still open");
        long cdStart = _out.Position;
        foreach (var e in _entries)
        {
            var nameBytes = Encoding.UTF8.GetBytes(e.Name);
            bool bigSize = e.Size >= Saturated, bigOffset = e.LocalHeaderOffset >= Saturated;
            int extraLength = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
            var c = new byte[46 + nameBytes.Length + (extraLength > 0 ? 4 + extraLength : 0)];
            var s = c.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], (3 << 8) | VersionZip64); // made by: Unix
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], VersionZip64);
            BinaryPrimitives.WriteUInt16LittleEndian(s[8..], (ushort)(nameBytes.Any(b => b >= 0x80) ? 1 << 11 : 0));
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], DosDate1980);
            BinaryPrimitives.WriteUInt32LittleEndian(s[16..], e.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(s[20..], bigSize ? Saturated : (uint)e.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(s[24..], bigSize ? Saturated : (uint)e.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)nameBytes.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(s[30..], (ushort)(extraLength > 0 ? 4 + extraLength : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(s[38..], 0x81A4u << 16); // -rw-r--r--
            BinaryPrimitives.WriteUInt32LittleEndian(s[42..], bigOffset ? Saturated : (uint)e.LocalHeaderOffset);
            nameBytes.CopyTo(s[46..]);
            if (extraLength > 0)
            {
                var x = s[(46 + nameBytes.Length)..];
                BinaryPrimitives.WriteUInt16LittleEndian(x, 0x0001);
                BinaryPrimitives.WriteUInt16LittleEndian(x[2..], (ushort)extraLength);
                int p = 4;
                if (bigSize)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(x[p..], (ulong)e.Size); p += 8;
                    BinaryPrimitives.WriteUInt64LittleEndian(x[p..], (ulong)e.Size); p += 8;
                }
                if (bigOffset) BinaryPrimitives.WriteUInt64LittleEndian(x[p..], (ulong)e.LocalHeaderOffset);
            }
            _out.Write(c);
        }
        long cdEnd = _out.Position, cdSize = cdEnd - cdStart;
        bool zip64 = _entries.Count >= 0xFFFF || cdStart >= Saturated || cdSize >= Saturated;
        if (zip64)
        {
            var z = new byte[56 + 20];
            var s = z.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, 0x06064b50);
            BinaryPrimitives.WriteUInt64LittleEndian(s[4..], 44);
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], (3 << 8) | VersionZip64);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], VersionZip64);
            BinaryPrimitives.WriteUInt64LittleEndian(s[24..], (ulong)_entries.Count);
            BinaryPrimitives.WriteUInt64LittleEndian(s[32..], (ulong)_entries.Count);
            BinaryPrimitives.WriteUInt64LittleEndian(s[40..], (ulong)cdSize);
            BinaryPrimitives.WriteUInt64LittleEndian(s[48..], (ulong)cdStart);
            BinaryPrimitives.WriteUInt32LittleEndian(s[56..], 0x07064b50);
            BinaryPrimitives.WriteUInt64LittleEndian(s[64..], (ulong)cdEnd);
            BinaryPrimitives.WriteUInt32LittleEndian(s[72..], 1);
            _out.Write(z);
        }
        var eocd = new byte[22];
        var t = eocd.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(t, 0x06054b50);
        ushort count = (ushort)Math.Min(_entries.Count, 0xFFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(t[8..], count);
        BinaryPrimitives.WriteUInt16LittleEndian(t[10..], count);
        BinaryPrimitives.WriteUInt32LittleEndian(t[12..], cdSize >= Saturated ? Saturated : (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(t[16..], cdStart >= Saturated ? Saturated : (uint)cdStart);
        _out.Write(eocd);
    }
}
