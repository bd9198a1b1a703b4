using System.Security.Cryptography;
using Xunit;

namespace DyDiT.Eval.Reference.Tests;

/// <summary>The reference-feature cache: keys follow the bytes of both files and the preprocessing; entries appear whole.</summary>
public sealed class FeatureCacheTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-cache-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string File(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir.FullName, name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void KeyIsTheHashOfBothFileHashesAndThePreprocessing()
    {
        var reference = File("ref.npz", [1, 2, 3]);
        var weights = File("w.pth", [4, 5]);
        // Independent computation of the documented key.
        byte[] expectedInput = [.. SHA256.HashData(new byte[] { 1, 2, 3 }), .. SHA256.HashData(new byte[] { 4, 5 }), .. "features-v1/adm"u8.ToArray()];
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expectedInput)), FeatureCache.Key(reference, weights, "adm"));
        Assert.NotEqual(FeatureCache.Key(reference, weights, "adm"), FeatureCache.Key(reference, weights, "pytorch-fid"));
        var changed = File("ref2.npz", [1, 2, 4]);
        Assert.NotEqual(FeatureCache.Key(reference, weights, "adm"), FeatureCache.Key(changed, weights, "adm"));
    }

    [Fact]
    public void PutWritesWholeEntriesOnlyAndFailedWritesLeaveNothing()
    {
        var cache = new FeatureCache(Path.Combine(_dir.FullName, "cache"));
        Assert.False(cache.TryGet("k1", out _));
        Assert.Throws<IOException>(() => cache.Put("k1", tmp =>
        {
            System.IO.File.WriteAllBytes(tmp, [1]);
            throw new IOException("disk full");
        }));
        Assert.False(cache.TryGet("k1", out _));
        Assert.Empty(Directory.GetFiles(cache.Directory));

        cache.Put("k1", tmp => System.IO.File.WriteAllBytes(tmp, [7, 8]));
        Assert.True(cache.TryGet("k1", out var path));
        Assert.Equal(new byte[] { 7, 8 }, System.IO.File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData("bit-flip")]
    [InlineData("truncated")]
    [InlineData("garbage")]
    [InlineData("empty")]
    [InlineData("no-checksum")]
    [InlineData("bad-checksum-file")]
    public void EntriesAreVerifiedOnUseAndABadOneIsRejectedNamingIt(string damage)
    {
        var cache = new FeatureCache(Path.Combine(_dir.FullName, "cache"));
        byte[] content = [.. Enumerable.Range(0, 1000).Select(i => (byte)(i * 7))];
        var path = cache.Put("k2", tmp => System.IO.File.WriteAllBytes(tmp, content));
        // The checksum file is sha256sum's line for the entry.
        Assert.Equal($"{Convert.ToHexStringLower(SHA256.HashData(content))}  k2.npz\n", System.IO.File.ReadAllText(cache.ChecksumPathFor("k2")));
        Assert.True(cache.TryGet("k2", out var found, out var rejected));
        Assert.Equal(path, found);
        Assert.Null(rejected);

        switch (damage)
        {
            case "bit-flip": content[500] ^= 0x10; System.IO.File.WriteAllBytes(path, content); break;
            case "truncated": System.IO.File.WriteAllBytes(path, content[..600]); break;
            case "garbage": System.IO.File.WriteAllText(path, "not an npz at all"); break;
            case "empty": System.IO.File.WriteAllBytes(path, []); break;
            case "no-checksum": System.IO.File.Delete(cache.ChecksumPathFor("k2")); break;
            case "bad-checksum-file": System.IO.File.WriteAllText(cache.ChecksumPathFor("k2"), "zz"); break;
        }
        Assert.False(cache.TryGet("k2", out found, out rejected));
        Assert.Equal(path, found);
        Assert.NotNull(rejected);
        Assert.StartsWith(path + ": ", rejected);
        Assert.False(cache.TryGet("k2", out _));

        // Writing the entry again repairs it.
        cache.Put("k2", tmp => System.IO.File.WriteAllBytes(tmp, [1, 2, 3]));
        Assert.True(cache.TryGet("k2", out _, out rejected));
        Assert.Null(rejected);
        Assert.Equal(["k2.npz", "k2.npz.sha256"], Directory.GetFiles(cache.Directory).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void CatalogKnowsAdmsImageNet256Reference()
    {
        var entry = ReferenceCatalog.Find("/data/VIRTUAL_imagenet256_labeled.npz");
        Assert.NotNull(entry);
        Assert.Equal("https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet/256/VIRTUAL_imagenet256_labeled.npz", entry.Url);
    }
}
