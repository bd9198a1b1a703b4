using System.IO.Compression;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>Temporary checkpoint files for hostile-input tests, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Root);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "dydit-torch-tests-" + Guid.NewGuid().ToString("N"));

    public string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(Root, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class CheckpointFiles
{
    /// <summary>A stored (uncompressed) zip with the given members, in order, like torch writes them.</summary>
    public static byte[] Zip(params (string Name, byte[] Data)[] members)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in members)
            {
                var e = zip.CreateEntry(name, CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(data);
            }
        }
        return ms.ToArray();
    }

    /// <summary>All members of a zip fixture, in order.</summary>
    public static List<(string Name, byte[] Data)> ReadZip(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        return zip.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, ms.ToArray());
        }).ToList();
    }

    /// <summary>The four pickles that precede a legacy checkpoint's object pickle.</summary>
    public static byte[] LegacyPrefix()
    {
        var magic = new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.' };
        var protocol = new byte[] { 0x80, 0x02, (byte)'M', 0xe9, 0x03, (byte)'.' };
        var sysInfo = new byte[] { 0x80, 0x02, (byte)'}', (byte)'.' };
        return [.. magic, .. protocol, .. sysInfo];
    }
}
