using System.Security.Cryptography;

namespace DyDiT.Eval.Reference;

/// <summary>
/// Inception features of reference batches, cached on disk so that evaluating many models against the same
/// 10,000 reference images runs the network over them once. An entry is keyed by the SHA-256 of the reference file's
/// bytes, of the weights file's bytes and the preprocessing name: a changed file or setting is a different entry.
/// Entries are written to a temporary name and renamed, so a crash never leaves a half-written entry, and each is
/// verified on use: its SHA-256, recorded in <c>KEY.npz.sha256</c> when written, is checked before it is read, so a
/// damaged entry is recomputed rather than trusted.
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

    /// <summary>Path of the entry's checksum file: <c>sha256sum</c>'s line for the entry (<c>sha256sum -c</c> checks it).</summary>
    public string ChecksumPathFor(string key) => PathFor(key) + ".sha256";

    /// <summary>Whether a verified entry exists for <paramref name="key"/>; see <see cref="TryGet(string, out string, out string?)"/>.</summary>
    public bool TryGet(string key, out string path) => TryGet(key, out path, out _);

    /// <summary>
    /// Whether the entry for <paramref name="key"/> exists and its bytes still have the SHA-256 recorded when it was
    /// written. An entry that fails the check (truncated, altered, garbage, or without its checksum file) is not used:
    /// the result is false and <paramref name="rejected"/> says which file and why, so the caller recomputes it and
    /// <see cref="Put"/> replaces it. Nothing here throws for a bad entry.
    /// </summary>
    public bool TryGet(string key, out string path, out string? rejected)
    {
        path = PathFor(key);
        rejected = null;
        if (!File.Exists(path)) return false;
        string? why = Verify(path, ChecksumPathFor(key));
        if (why == null) return true;
        rejected = $"{path}: {why}";
        return false;
    }

    /// <summary>Null when <paramref name="entry"/>'s SHA-256 is the one <paramref name="checksumFile"/> records, else why not.</summary>
    private static string? Verify(string entry, string checksumFile)
    {
        try
        {
            if (!File.Exists(checksumFile)) return $"no checksum file {System.IO.Path.GetFileName(checksumFile)} (written by an older version, or cut short)";
            var line = File.ReadAllText(checksumFile);
            if (line.Length < 64 || !IsHex(line.AsSpan(0, 64))) return $"checksum file {System.IO.Path.GetFileName(checksumFile)} is damaged";
            string actual = Convert.ToHexStringLower(HashFile(entry, null));
            return string.Equals(actual, line[..64], StringComparison.OrdinalIgnoreCase)
                ? null
                : $"its SHA-256 is {actual[..12]}…, {line[..12]}… when written (the file was truncated or altered)";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"unreadable ({e.Message})";
        }
    }

    private static bool IsHex(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
            if (!char.IsAsciiHexDigit(c)) return false;
        return true;
    }

    /// <summary>
    /// Creates (or replaces) the entry: <paramref name="write"/> writes the complete file at the path it is given; its
    /// SHA-256 is recorded next to it, checked by <see cref="TryGet(string, out string, out string?)"/>.
    /// </summary>
    public string Put(string key, Action<string> write)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string final = PathFor(key), finalChecksum = ChecksumPathFor(key);
        string suffix = $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        string temp = final + suffix, tempChecksum = finalChecksum + suffix;
        try
        {
            write(temp);
            string hash = Convert.ToHexStringLower(HashFile(temp, null));
            File.WriteAllText(tempChecksum, $"{hash}  {System.IO.Path.GetFileName(final)}\n");
            // Entry first, then its checksum: a crash in between leaves a pair that fails the check, never a wrong pair that passes.
            File.Move(temp, final, overwrite: true);
            File.Move(tempChecksum, finalChecksum, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
            if (File.Exists(tempChecksum)) File.Delete(tempChecksum);
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
