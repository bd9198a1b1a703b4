using System.Security.Cryptography;
using System.Text.Json;

namespace DyDiT.Eval.Cluster.Specs;

/// <summary>
/// SHA-256 of files, remembered by (full path, size, last write time) in <c>hashes.json</c> of dydit-eval's cache folder
/// (<see cref="Reference.FeatureCache.Root"/>), so a 2.7 GB checkpoint is read once, not on every <c>run</c>, and two
/// copies of the same weights give the same run id whatever their paths. Several processes may update the cache at once: each writes a
/// whole new file under a temporary name and renames it, so readers never see half a file (a lost entry is re-hashed).
/// </summary>
public static class ContentHashes
{
    private static readonly Lock Gate = new();

    /// <summary>The cache file, in the folder the reference-feature cache also uses.</summary>
    public static string CachePath => Path.Combine(Reference.FeatureCache.Root, "hashes.json");

    /// <summary>Hex SHA-256 of the file's bytes (cached).</summary>
    public static string Of(string path)
    {
        var info = new FileInfo(Path.GetFullPath(path));
        if (!info.Exists) throw new FileNotFoundException($"{path}: file not found", path);
        string key = $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
        lock (Gate)
        {
            var cache = Read();
            if (cache.TryGetValue(key, out var known)) return known;
            string hash = File(info.FullName);
            cache = Read(); // another process may have added entries meanwhile
            cache[key] = hash;
            Write(cache);
            return hash;
        }
    }

    /// <summary>Hex SHA-256 of a file, read now (no cache).</summary>
    public static string File(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static Dictionary<string, string> Read()
    {
        try
        {
            var text = System.IO.File.ReadAllText(CachePath);
            return JsonSerializer.Deserialize<Dictionary<string, string>>(text) ?? [];
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return []; // no cache yet, or unreadable: hashing again is always correct
        }
    }

    private static void Write(Dictionary<string, string> cache)
    {
        try
        {
            var path = CachePath;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var tmp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
            System.IO.File.WriteAllText(tmp, JsonSerializer.Serialize(cache));
            System.IO.File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only home: the hash is still right, only not remembered.
        }
    }
}
