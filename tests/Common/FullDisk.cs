using System.Diagnostics;
using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// A real, small file system that fills up: a tmpfs of a few hundred KiB mounted on a fresh folder (needs root, as the
/// CI and dev machines run). Writes past its size fail with ENOSPC exactly as a full disk does. With CI=true a machine
/// that cannot mount fails the test; locally <see cref="TryMount"/> returns null and says why.
/// </summary>
public sealed class FullDisk : IDisposable
{
    /// <summary>The mounted folder; everything under it shares the size limit.</summary>
    public string Path { get; }

    private FullDisk(string path) => Path = path;

    /// <summary>Mounts a tmpfs of <paramref name="kib"/> KiB; null (local runs only) when this machine cannot.</summary>
    public static FullDisk? TryMount(int kib = 256)
    {
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "dydit-full-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var (code, err) = Execute("mount", "-t", "tmpfs", "-o", $"size={kib}k,mode=0777", "tmpfs", dir);
        if (code == 0) return new FullDisk(dir);
        try { Directory.Delete(dir); } catch (IOException) { }
        string why = $"cannot mount a {kib} KiB tmpfs to stand for a full disk (mount exited {code}: {err.Trim()}); it needs root";
        if (Environment.GetEnvironmentVariable("CI") == "true") Assert.Fail(why);
        Console.WriteLine("skipping full-disk check: " + why);
        return null;
    }

    /// <summary>Fills the file system to its last byte, so the next write of any size fails.</summary>
    public void Fill()
    {
        // Unbuffered: a buffered stream would try to flush its rest on Dispose and throw the very ENOSPC it provoked.
        using var f = new FileStream(System.IO.Path.Combine(Path, "filler"), FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        var block = new byte[4096];
        try { while (true) f.Write(block); }
        catch (IOException) { }
        try { f.Flush(); } catch (IOException) { }
        // Whatever is left is smaller than a block: take it byte by byte.
        try { while (true) { f.WriteByte(0); f.Flush(); } }
        catch (IOException) { }
    }

    public void Dispose()
    {
        Execute("umount", "-l", Path);
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Stderr) Execute(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        try
        {
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, err);
        }
        catch (System.ComponentModel.Win32Exception e) { return (-1, e.Message); }
    }
}
