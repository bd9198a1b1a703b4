namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// A file could not be read as the tensor container it claims to be: truncated, corrupted, an unsupported
/// dtype, a shape that does not match the data, a forbidden pickle global. The message names the file and
/// the fault in one line, so a command can print it as is. Control characters in the path or the fault (a name
/// read from the file) are shown as <c>\u001b</c>-style escapes (<see cref="PrintableText"/>).
/// </summary>
public sealed class TensorFileException : Exception
{
    public TensorFileException(string path, string fault, Exception? inner = null)
        : base($"{PrintableText.Escape(path)}: {PrintableText.Escape(fault)}", inner)
    {
        FilePath = path;
        Fault = PrintableText.Escape(fault);
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the file name (control characters escaped).</summary>
    public string Fault { get; }
}
