using System.Buffers.Binary;
using System.Text;
using DyDiT.Eval.Engine.Formats.Png;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Png;

/// <summary>
/// Our PNG encoder checked only against code that is not ours: PIL decodes every pixel back to the source, pngcheck
/// accepts the file, and each chunk's CRC is recomputed by a bitwise CRC-32 written here and by Python's zlib.
/// </summary>
public sealed class PngWriterTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-png-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>Deterministic test images: smooth ramps (Sub/Up/Average/Paeth win), noise (None wins), flat, and a mix.</summary>
    internal static byte[] Pattern(string kind, int width, int height)
    {
        var rgb = new byte[width * height * 3];
        var random = new Random(width * 7919 + height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                switch (kind)
                {
                    case "noise":
                        rgb[i] = (byte)random.Next(256); rgb[i + 1] = (byte)random.Next(256); rgb[i + 2] = (byte)random.Next(256);
                        break;
                    case "flat":
                        rgb[i] = 12; rgb[i + 1] = 200; rgb[i + 2] = 255;
                        break;
                    case "ramps":
                        rgb[i] = (byte)(x * 3 + y); rgb[i + 1] = (byte)(y * 5); rgb[i + 2] = (byte)(x * y / 7);
                        break;
                    default: // mix: smooth shading with mild noise and hard edges, like a decoded sample
                        double v = 128 + 100 * Math.Sin(x / 9.0) * Math.Cos(y / 13.0);
                        rgb[i] = (byte)Math.Clamp(v + random.Next(-6, 7), 0, 255);
                        rgb[i + 1] = (byte)((x / 17 + y / 11) % 2 == 0 ? 30 : 220);
                        rgb[i + 2] = (byte)Math.Clamp(255 - v + (y > height / 2 ? random.Next(-40, 41) : 0), 0, 255);
                        break;
                }
            }
        return rgb;
    }

    public static TheoryData<string, int, int> Images() => new()
    {
        { "mix", 1, 1 },
        { "mix", 1, 37 },
        { "ramps", 53, 1 },
        { "ramps", 64, 48 },
        { "noise", 31, 17 },
        { "flat", 40, 40 },
        { "mix", 256, 256 },
        { "noise", 300, 200 }, // ≈ 180 KB of incompressible data: several IDAT chunks
    };

    [Theory]
    [MemberData(nameof(Images))]
    public void PilDecodesEveryPixelAndPngCheckAcceptsIt(string kind, int width, int height)
    {
        if (!ImagePeer.PilAvailable()) return;
        var rgb = Pattern(kind, width, height);
        var path = Path.Combine(_dir.FullName, $"{kind}-{width}x{height}.png");
        PngWriter.Save(path, rgb, width, height);

        var (mode, w, h, decoded) = ImagePeer.DecodeWithPil(path);
        Assert.Equal("RGB", mode);
        Assert.Equal((width, height), (w, h));
        Assert.Equal(rgb.Length, decoded.Length);
        for (int i = 0; i < rgb.Length; i++)
            if (rgb[i] != decoded[i])
                Assert.Fail($"pixel ({i / 3 % width}, {i / 3 / width}) channel {i % 3}: wrote {rgb[i]}, PIL decoded {decoded[i]}");

        if (ImagePeer.PngCheckAvailable())
        {
            var report = ImagePeer.RunPngCheck(path);
            Assert.Contains($"{width} x {height} image, 24-bit RGB, non-interlaced", report);
        }
    }

    [Fact]
    public void EveryChunkCarriesTheCrcOfItsTypeAndDataByAnIndependentCrc32()
    {
        var png = PngWriter.Encode(Pattern("noise", 300, 200), 300, 200);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var types = new List<string>();
        int at = 8;
        while (at < png.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            var typeAndData = png.AsSpan(at + 4, 4 + length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length));
            string type = Encoding.ASCII.GetString(typeAndData[..4]);
            Assert.True(BitwiseCrc32(typeAndData) == stored, $"chunk {types.Count} ({type}) stores CRC {stored:x8}, its bytes give {BitwiseCrc32(typeAndData):x8}");
            types.Add(type);
            at += 12 + length;
        }
        Assert.Equal(png.Length, at);
        Assert.Equal("IHDR", types[0]);
        Assert.Equal("IEND", types[^1]);
        Assert.True(types.Count(t => t == "IDAT") >= 3, $"chunks: {string.Join(' ', types)}");
        Assert.All(types.Skip(1).SkipLast(1), t => Assert.Equal("IDAT", t));
    }

    [Fact]
    public void PythonZlibAgreesOnEveryCrcAndTheRowFiltersAreValid()
    {
        if (!ImagePeer.PilAvailable()) return;
        // One image per kind; the decoded filter bytes show which of PNG's five filters the rows use.
        var used = new SortedSet<int>();
        foreach (var (kind, w, h) in new[] { ("mix", 256, 256), ("ramps", 64, 48), ("noise", 31, 17), ("flat", 40, 40) })
        {
            var path = Path.Combine(_dir.FullName, $"{kind}.png");
            PngWriter.Save(path, Pattern(kind, w, h), w, h);
            const string script = """
                import struct, sys, zlib
                data = open(sys.argv[1], 'rb').read()
                assert data[:8] == b'\x89PNG\r\n\x1a\n'
                at, idat, ihdr = 8, b'', None
                while at < len(data):
                    (n,) = struct.unpack('>I', data[at:at + 4])
                    kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
                    (crc,) = struct.unpack('>I', data[at + 8 + n:at + 12 + n])
                    assert zlib.crc32(kind + body) == crc, (kind, hex(crc), hex(zlib.crc32(kind + body)))
                    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
                    if kind == b'IDAT': idat += body
                    at += 12 + n
                w, h, depth, colour, comp, filt, lace = ihdr
                assert (depth, colour, comp, filt, lace) == (8, 2, 0, 0, 0), ihdr
                raw = zlib.decompress(idat)
                stride = 3 * w + 1
                assert len(raw) == h * stride, (len(raw), h, stride)
                filters = {raw[y * stride] for y in range(h)}
                assert filters <= {0, 1, 2, 3, 4}, filters
                print(' '.join(str(f) for f in sorted(filters)))
                """;
            foreach (var f in PythonPeer.Run(script, [path]).Split(' ', StringSplitOptions.RemoveEmptyEntries)) used.Add(int.Parse(f));
        }
        // The adaptive choice really varies (a writer stuck on filter 0 would pass the pixel tests too).
        Assert.True(used.Count >= 3, $"filters used: {string.Join(", ", used)}");
    }

    [Fact]
    public void SameImageGivesTheSameBytes()
    {
        var rgb = Pattern("mix", 70, 30);
        Assert.Equal(PngWriter.Encode(rgb, 70, 30), PngWriter.Encode(rgb, 70, 30));
    }

    [Theory]
    [InlineData(0, 4, 0)]
    [InlineData(4, 0, 0)]
    [InlineData(4, 4, 47)]
    [InlineData(4, 4, 49)]
    public void RejectsSizesThatDoNotMatchThePixels(int width, int height, int bytes)
    {
        var e = Assert.Throws<ArgumentException>(() => PngWriter.Encode(new byte[bytes], width, height));
        Assert.Contains($"{width}", e.Message);
    }

    [Fact]
    public void SaveLeavesOnlyTheFinishedFile()
    {
        var path = Path.Combine(_dir.FullName, "only.png");
        PngWriter.Save(path, Pattern("flat", 5, 5), 5, 5);
        Assert.Equal(["only.png"], _dir.GetFiles().Select(f => f.Name));
    }

    // CRC-32 as the PNG specification's annex gives it: reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF,
    // bit by bit — no table, no shared code with System.IO.Hashing.
    private static uint BitwiseCrc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
