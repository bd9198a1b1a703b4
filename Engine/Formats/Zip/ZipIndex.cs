using System.Buffers.Binary;
using System.Text;

namespace DyDiT.Eval.Engine.Formats.Zip;

/// <summary>
/// The member table of a zip archive (torch checkpoints, npz): end-of-central-directory record (ZIP64 when the classic
/// fields overflow), central directory, and each member's local header to find where its bytes start.
/// torch stores every member uncompressed, so a member is just a byte range of the file; compressed or
/// encrypted members are reported, not inflated.
/// </summary>
internal sealed class ZipIndex
{
    private const uint LocalHeaderSig = 0x04034b50;
    private const uint CentralSig = 0x02014b50;
    private const uint EocdSig = 0x06054b50;
    private const uint Zip64EocdSig = 0x06064b50;
    private const uint Zip64LocatorSig = 0x07064b50;
    private const int EocdSize = 22;
    private const int CentralSize = 46;
    private const int LocalSize = 30;
    private const long MaxCentralDirectoryBytes = 256L << 20;

    private readonly Dictionary<string, Member> _members;

    private ZipIndex(Dictionary<string, Member> members, List<string> order)
    {
        _members = members;
        Names = order;
    }

    /// <summary>One stored member: where its bytes start in the file and how many there are.</summary>
    public readonly record struct Member(string Name, long DataOffset, long Size, int Method, bool Encrypted, uint Crc32);

    /// <summary>Member names in central-directory order.</summary>
    public IReadOnlyList<string> Names { get; }

    public bool TryGet(string name, out Member member) => _members.TryGetValue(name, out member);

    public static ZipIndex Read(MappedFile file)
    {
        string path = file.Path;
        long len = file.Length;
        if (len < EocdSize) throw new TensorFileException(path, $"zip archive is only {len} bytes, too short for an end-of-central-directory record");

        // The EOCD is the last 22 bytes plus a comment of at most 65535 bytes.
        long tailStart = Math.Max(0, len - EocdSize - 0xFFFF);
        byte[] tail = file.ReadArray(tailStart, len - tailStart);
        int eocd = -1;
        for (int i = tail.Length - EocdSize; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EocdSig
                && i + EocdSize + BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(i + 20)) <= tail.Length)
            {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) throw new TensorFileException(path, "zip end-of-central-directory record not found (file truncated or not a zip archive)");

        var e = tail.AsSpan(eocd);
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long eocdPos = tailStart + eocd;

        if (entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            long locPos = eocdPos - 20;
            if (locPos < 0) throw new TensorFileException(path, "zip needs a ZIP64 end-of-central-directory locator but the file is too short for one");
            byte[] loc = file.ReadArray(locPos, 20);
            if (BinaryPrimitives.ReadUInt32LittleEndian(loc) != Zip64LocatorSig)
                throw new TensorFileException(path, "zip needs a ZIP64 end-of-central-directory locator but none precedes the end record");
            long z64Pos = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(loc.AsSpan(8)), long.MaxValue);
            if (!file.Contains(z64Pos, 56)) throw new TensorFileException(path, $"ZIP64 end-of-central-directory offset {z64Pos} lies outside the file");
            byte[] z = file.ReadArray(z64Pos, 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(z) != Zip64EocdSig)
                throw new TensorFileException(path, $"no ZIP64 end-of-central-directory record at offset {z64Pos}");
            entries = ClampToLong(BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(32)));
            cdSize = ClampToLong(BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(40)));
            cdOffset = ClampToLong(BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(48)));
        }

        if (!file.Contains(cdOffset, cdSize))
            throw new TensorFileException(path, $"zip central directory (offset {cdOffset}, {cdSize} bytes) lies outside the {len}-byte file");
        if (cdSize > MaxCentralDirectoryBytes)
            throw new TensorFileException(path, $"zip central directory of {cdSize} bytes is implausibly large for a checkpoint (limit {MaxCentralDirectoryBytes})");
        if (entries > cdSize / CentralSize)
            throw new TensorFileException(path, $"zip claims {entries} members but its central directory has room for at most {cdSize / CentralSize}");

        byte[] cd = file.ReadArray(cdOffset, cdSize);
        var members = new Dictionary<string, Member>(StringComparer.Ordinal);
        var order = new List<string>();
        var extents = new List<(long Start, long End, string Name)>();
        int pos = 0;
        for (long n = 0; n < entries; n++)
        {
            if (pos > cd.Length - CentralSize || BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(pos)) != CentralSig)
                throw new TensorFileException(path, $"zip central directory entry {n} is missing or corrupt (offset {cdOffset + pos})");
            ReadOnlySpan<byte> c = cd.AsSpan(pos);
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(c[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(c[10..]);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(c[16..]);
            long csize = BinaryPrimitives.ReadUInt32LittleEndian(c[20..]);
            long usize = BinaryPrimitives.ReadUInt32LittleEndian(c[24..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(c[28..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(c[30..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(c[32..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(c[42..]);
            if (pos + CentralSize + nameLen + extraLen + commentLen > cd.Length)
                throw new TensorFileException(path, $"zip central directory entry {n} runs past the end of the directory");
            string name;
            try
            {
                name = new UTF8Encoding(false, true).GetString(c.Slice(CentralSize, nameLen));
            }
            catch (DecoderFallbackException)
            {
                throw new TensorFileException(path, $"zip central directory entry {n} has a name that is not valid UTF-8");
            }

            // ZIP64 extended information: only the fields whose classic value is saturated, in this order.
            var extra = c.Slice(CentralSize + nameLen, extraLen);
            while (extra.Length >= 4)
            {
                int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
                int size = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
                if (size > extra.Length - 4) break;
                if (id == 0x0001)
                {
                    var z = extra.Slice(4, size);
                    if (usize == 0xFFFFFFFF) usize = TakeU64(ref z, path, name);
                    if (csize == 0xFFFFFFFF) csize = TakeU64(ref z, path, name);
                    if (localOffset == 0xFFFFFFFF) localOffset = TakeU64(ref z, path, name);
                }
                extra = extra[(4 + size)..];
            }
            pos += CentralSize + nameLen + extraLen + commentLen;

            long dataOffset = DataOffset(file, name, localOffset);
            if (!file.Contains(dataOffset, csize))
                throw new TensorFileException(path, $"zip member '{name}' ({csize} bytes at offset {dataOffset}) runs past the end of the {len}-byte file");
            if (method == 0 && csize != usize)
                throw new TensorFileException(path, $"zip member '{name}' is stored but its sizes disagree ({csize} compressed vs {usize})");
            if (!members.TryAdd(name, new Member(name, dataOffset, usize, method, (flags & 1) != 0, crc)))
                throw new TensorFileException(path, $"zip member '{name}' appears twice in the central directory");
            order.Add(name);
            extents.Add((localOffset, dataOffset + csize, name));
        }

        // Members must not share bytes: entries that point into one member (a "zip bomb" by overlap) would make a
        // small file read as many times over as it has entries.
        extents.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (int i = 1; i < extents.Count; i++)
        {
            if (extents[i].Start < extents[i - 1].End)
                throw new TensorFileException(path, $"zip members '{extents[i - 1].Name}' and '{extents[i].Name}' overlap in the file (bytes from {extents[i].Start}); a zip's members never share bytes");
        }
        return new ZipIndex(members, order);
    }

    private static long DataOffset(MappedFile file, string name, long localOffset)
    {
        if (!file.Contains(localOffset, LocalSize))
            throw new TensorFileException(file.Path, $"zip member '{name}': local header offset {localOffset} lies outside the file");
        Span<byte> h = stackalloc byte[LocalSize];
        file.Read(localOffset, h);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalHeaderSig)
            throw new TensorFileException(file.Path, $"zip member '{name}': no local file header at offset {localOffset}");
        int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]);
        int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        return localOffset + LocalSize + nameLen + extraLen;
    }

    private static long TakeU64(ref ReadOnlySpan<byte> z, string path, string name)
    {
        if (z.Length < 8) throw new TensorFileException(path, $"zip member '{name}' has a truncated ZIP64 extra field");
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(z);
        z = z[8..];
        return ClampToLong(v);
    }

    private static long ClampToLong(ulong v) => v > long.MaxValue ? long.MaxValue : (long)v;
}
