using System.Diagnostics;
using System.Text;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Npy;

/// <summary>Damaged npy/npz files: either they still read, or the reader throws a TensorFileException. Nothing else, no hang.</summary>
public sealed class NpzCorruptionTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-npz-bad-");

    public void Dispose() => _dir.Delete(recursive: true);

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Fixtures.Path("npz")).Where(f => f.EndsWith(".npy") || f.EndsWith(".npz")).Order())
            data.Add(Path.GetFileName(f));
        return data;
    }

    private string Save(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir.FullName, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static void ReadEverything(string path)
    {
        using var f = TensorFile.Open(path);
        foreach (var t in f.Tensors) t.ValuesSha256();
    }

    private static void AssertReadsOrTypedError(string path)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            ReadEverything(path);
        }
        catch (TensorFileException e)
        {
            Assert.Contains(path, e.Message);
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"{path} took {sw.Elapsed}");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void TruncatedAndFlippedCopiesFailCleanly(string file)
    {
        var original = File.ReadAllBytes(Fixtures.Path("npz", file));
        var rng = new Random(file.GetHashCode(StringComparison.Ordinal) & 0x7FFF);
        for (int i = 0; i < 24; i++)
        {
            int length = i < 12 ? i * original.Length / 12 : rng.Next(original.Length);
            var p = Save("t" + Path.GetExtension(file), original[..length]);
            if (length == 0) { Assert.Throws<TensorFileException>(() => ReadEverything(p)); continue; }
            AssertReadsOrTypedError(p);
        }
        for (int i = 0; i < 150; i++)
        {
            var copy = (byte[])original.Clone();
            int flips = 1 + rng.Next(3);
            for (int k = 0; k < flips; k++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
            AssertReadsOrTypedError(Save("f" + Path.GetExtension(file), copy));
        }
    }

    [Fact]
    public void SpecificFaultsAreNamed()
    {
        var npy = File.ReadAllBytes(Fixtures.Path("npz", "f32.npy"));

        var badMagic = (byte[])npy.Clone();
        badMagic[0] = (byte)'X';
        Assert.Contains("magic", Assert.Throws<TensorFileException>(() => Formats.Npy.NpyFile.Open(Save("m.npy", badMagic))).Message);

        Assert.Contains("bytes", Assert.Throws<TensorFileException>(() => Formats.Npy.NpyFile.Open(Save("s.npy", npy[..^4]))).Message);

        var text = Encoding.Latin1.GetString(npy);
        var unknown = Encoding.Latin1.GetBytes(text.Replace("'<f4'", "'<c8'"));
        Assert.Contains("'<c8'", Assert.Throws<TensorFileException>(() => Formats.Npy.NpyFile.Open(Save("u.npy", unknown))).Message);

        var wrongShape = Encoding.Latin1.GetBytes(text.Replace("(2, 3, 4)", "(2, 3, 5)"));
        Assert.Contains("(2, 3, 5)", Assert.Throws<TensorFileException>(() => Formats.Npy.NpyFile.Open(Save("w.npy", wrongShape))).Message);

        var npz = File.ReadAllBytes(Fixtures.Path("npz", "savez_ref_batch.npz"));
        Assert.Throws<TensorFileException>(() => ReadEverything(Save("z.npz", npz[..(npz.Length - 30)])));
    }

    [Fact]
    public void FlippedDataBitFailsTheCrcCheck()
    {
        var npz = File.ReadAllBytes(Fixtures.Path("npz", "savez_images.npz"));
        npz[1000] ^= 0x10; // inside arr_0's pixel data
        var path = Save("crc.npz", npz);
        using var archive = Formats.Npy.NpzArchive.Open(path);
        var e = Assert.Throws<TensorFileException>(() => archive["arr_0"].ValuesSha256());
        Assert.Contains("CRC-32", e.Message);
        using var rows = archive["arr_0"].OpenRows();
        var buffer = new byte[rows.RowBytes * 3];
        Assert.Contains("CRC-32", Assert.Throws<TensorFileException>(() => { while (rows.ReadRows(buffer, 3) > 0) { } }).Message);
    }

    [Fact]
    public void CentralDirectoryEntriesSharingOneMembersBytesAreRefused()
    {
        // One stored member, then a central directory that lists it under two names: an "overlap" zip bomb in small.
        var ms = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            using var s = zip.CreateEntry("a.npy", System.IO.Compression.CompressionLevel.NoCompression).Open();
            s.Write(File.ReadAllBytes(Fixtures.Path("npz", "f32.npy")));
        }
        var single = ms.ToArray();
        int eocd = single.Length - 22;
        int cd = BitConverter.ToInt32(single, eocd + 16);
        var entry = single[cd..eocd];
        var second = (byte[])entry.Clone();
        second[46] = (byte)'b';
        var end = single[eocd..];
        BitConverter.TryWriteBytes(end.AsSpan(8), (ushort)2);
        BitConverter.TryWriteBytes(end.AsSpan(10), (ushort)2);
        BitConverter.TryWriteBytes(end.AsSpan(12), entry.Length * 2);
        var path = Save("overlap.npz", [.. single[..cd], .. entry, .. second, .. end]);
        var ex = Assert.Throws<TensorFileException>(() => ReadEverything(path));
        Assert.Contains("'a.npy'", ex.Message);
        Assert.Contains("'b.npy'", ex.Message);
        Assert.Contains("overlap", ex.Message);
        // The untouched archive reads.
        ReadEverything(Save("single.npz", single));
    }
}
