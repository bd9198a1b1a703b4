using System.Security.Cryptography;

namespace DyDiT.Eval.Reference;

/// <summary>
/// Inception features of reference batches, cached on disk so that evaluating many models against the same
/// 10,000 reference images runs the network over them once. An entry is keyed by the SHA-256 of the reference file's
/// bytes, of the weights file's bytes and the preprocessing name: a changed file or setting is a different entry.
/// Entries are written to a temporary name and renamed, so a crash never leaves a half-written entry.
/// </summary>
public sealed class FeatureCache
{
    public FeatureCache(string directory) => Directory = System.IO.Path.GetFullPath(directory);

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>
    /// $DYDIT_CACHE/features, else $XDG_CACHE_HOME/dydit-eval/features, else ~/.cache/dydit-eval/features.
    /// </summary>
    public static FeatureCache Default() => new(System.IO.Path.Combine(Root, "features"));

    /// <summary>dydit-eval's cache folder: $DYDIT_CACHE, else $XDG_CACHE_HOME/dydit-eval, else ~/.cache/dydit-eval.</summary>
    public static string Root
    {
        get
        {
            string? root = Environment.GetEnvironmentVariable("DYDIT_CACHE");
            if (!string.IsNullOrEmpty(root)) return root;
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(xdg)) xdg = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return System.IO.Path.Combine(xdg, "dydit-eval");
        }
    }

    /// <summary>The entry key: hex SHA-256 over both files' SHA-256 and the preprocessing name.</summary>
    public static string Key(string referencePath, string weightsPath, string preprocessing, IProgress<long>? bytesHashed = null)
    {
        var parts = new List<byte>();
        parts.AddRange(HashFile(referencePath, bytesHashed));
        parts.AddRange(HashFile(weightsPath, bytesHashed));
        parts.AddRange(System.Text.Encoding.UTF8.GetBytes("features-v1/" + preprocessing));
        return Convert.ToHexStringLower(SHA256.HashData(parts.ToArray()));
    }

    /// <summary>Path of the entry for <paramref name="key"/> (it may not exist).</summary>
    public string PathFor(string key) => System.IO.Path.Combine(Directory, key + ".npz");

    public bool TryGet(string key, out string path)
    {
        path = PathFor(key);
        return File.Exists(path);
    }

    /// <summary>Creates the entry: <paramref name="write"/> writes the complete file at the path it is given.</summary>
    public string Put(string key, Action<string> write)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string final = PathFor(key);
        string temp = final + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            write(temp);
            File.Move(temp, final, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return final;
    }

    private static byte[] HashFile(string path, IProgress<long>? bytesHashed)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            bytesHashed?.Report(n);
        }
        return sha.GetHashAndReset();
    }
}
