namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// A file could not be read as the tensor container it claims to be: truncated, corrupted, an unsupported
/// dtype, a shape that does not match the data, a forbidden pickle global. The message names the file and
/// the fault in one line, so a command can print it as is.
/// </summary>
public sealed class TensorFileException : Exception
{
    public TensorFileException(string path, string fault, Exception? inner = null)
        : base($"{path}: {fault}", inner)
    {
        FilePath = path;
        Fault = fault;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the file name.</summary>
    public string Fault { get; }
}
