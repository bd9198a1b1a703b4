using System.Globalization;
using System.Text;

namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// Makes text taken from a file (npz member names, checkpoint keys, safetensors keys) safe to print on a terminal:
/// control characters (C0, DEL, C1), line and paragraph separators and the bidirectional overrides become visible
/// <c>\u001b</c>-style escapes, so a crafted name cannot clear the screen, retitle the window, forge extra lines
/// or reorder what is shown. Everything else, backslashes included, is kept, which makes escaping idempotent
/// (an escaped message can be escaped again unchanged).
/// </summary>
public static class PrintableText
{
    /// <summary><paramref name="text"/> with every unsafe character replaced by its <c>\uXXXX</c> escape.</summary>
    public static string Escape(string text) => Escape(text, keepNewlines: false);

    /// <summary>
    /// As <see cref="Escape(string)"/> but keeps line feeds, for whole messages that are several lines on purpose
    /// (names are escaped where they are put into a message, so a name's own line feed is already visible).
    /// </summary>
    public static string EscapeMessage(string text) => Escape(text, keepNewlines: true);

    private static string Escape(string text, bool keepNewlines)
    {
        ArgumentNullException.ThrowIfNull(text);
        int first = -1;
        for (int i = 0; i < text.Length; i++)
        {
            if (IsUnsafe(text[i], keepNewlines))
            {
                first = i;
                break;
            }
        }
        if (first < 0) return text;
        var sb = new StringBuilder(text.Length + 16);
        sb.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (IsUnsafe(c, keepNewlines)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool IsUnsafe(char c, bool keepNewlines) => c switch
    {
        '\n' => !keepNewlines,
        < ' ' or '\u007f' => true,
        >= '\u0080' and <= '\u009f' => true,
        '\u2028' or '\u2029' => true,
        >= '\u202a' and <= '\u202e' => true,
        >= '\u2066' and <= '\u2069' => true,
        '\u200e' or '\u200f' or '\u061c' => true,
        _ => false,
    };
}
