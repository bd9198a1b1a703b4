using DyDiT.Eval.Engine.Formats;

namespace DyDiT.Eval.Cli;

/// <summary>
/// Checks of file and folder arguments made before anything is loaded or computed: a folder where a file is expected
/// (or the reverse) is bad input naming the path, found in milliseconds rather than after the work.
/// </summary>
internal static class PathArguments
{
    /// <summary>An existing file to read: "is a directory" / "file not found" (exit 1) otherwise.</summary>
    public static void InputFile(string path, string option)
    {
        if (Directory.Exists(path)) throw new TensorFileException(path, $"is a directory; {option} takes a file");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
    }

    /// <summary>A file to write: refused (exit 1) when the path is an existing directory.</summary>
    public static void OutputFile(string path, string option)
    {
        if (Directory.Exists(path)) throw new TensorFileException(path, $"is a directory; {option} takes the name of the file to write");
    }

    /// <summary>A folder to write into: refused (exit 1) when the path is an existing file.</summary>
    public static void OutputFolder(string path, string option)
    {
        if (File.Exists(path)) throw new TensorFileException(path, $"is a file; {option} takes a folder to write the files into");
    }

    /// <summary>
    /// Runs <paramref name="write"/>, which writes <paramref name="path"/>; an I/O failure on the way (a full disk, a
    /// read-only or vanished file system) becomes <see cref="OutputWriteException"/> naming the path (exit 3).
    /// </summary>
    public static T Writing<T>(string path, Func<T> write)
    {
        try
        {
            return write();
        }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or EndOfStreamException))
        {
            throw new OutputWriteException(path, e);
        }
    }

    /// <summary>Whether <paramref name="e"/> is a full disk or an exceeded quota (<see cref="DiskFull.Is"/>).</summary>
    public static bool IsDiskFull(IOException e) => DiskFull.Is(e);
}

/// <summary>An output file or folder could not be written (full disk, read-only file system, …): exit 3 naming the path.</summary>
internal sealed class OutputWriteException(string path, IOException inner)
    : Exception($"{path}: cannot write it: {(PathArguments.IsDiskFull(inner) ? "no space left on device" : inner.Message)}; nothing was left behind", inner)
{
    public string OutputPath { get; } = path;
}
