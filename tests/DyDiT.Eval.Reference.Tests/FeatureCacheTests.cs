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

    [Fact]
    public void CatalogKnowsAdmsImageNet256Reference()
    {
        var entry = ReferenceCatalog.Find("/data/VIRTUAL_imagenet256_labeled.npz");
        Assert.NotNull(entry);
        Assert.Equal("https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet/256/VIRTUAL_imagenet256_labeled.npz", entry.Url);
    }
}
