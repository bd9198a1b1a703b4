using System.Text;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>Writes a report file through a temporary name renamed into place: a browser refreshing the report never sees half a file.</summary>
internal static class ReportFiles
{
    /// <summary>UTF-8 without a byte-order mark (CSV, JSON, SVG, Markdown and HTML readers all expect that).</summary>
    public static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
                write(fs);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    public static void WriteText(string path, string text) => Write(path, s =>
    {
        using var w = new StreamWriter(s, Utf8);
        w.Write(text);
    });
}
