using System.Diagnostics;
using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// Independent PNG checkers for tests of our own encoder: Debian's python3-PIL (a decoder that shares no code with
/// ours, and whose <c>verify()</c> checks every chunk CRC) and <c>pngcheck</c>. Same policy as
/// <see cref="PythonPeer"/>: with CI=true a missing checker fails the test; locally the test stops early and says why.
/// </summary>
public static class ImagePeer
{
    public const string PngCheck = "/usr/bin/pngcheck";

    private static readonly Lazy<string?> PilMissing = new(() =>
    {
        if (!File.Exists(PythonPeer.Interpreter)) return $"{PythonPeer.Interpreter} not found";
        var psi = new ProcessStartInfo(PythonPeer.Interpreter, ["-c", "import PIL.Image"]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? null : $"PIL is not importable by {PythonPeer.Interpreter}: {err.Trim()}";
    });

    /// <summary>True when python3 with PIL is there; false (local runs only) when the test should stop.</summary>
    public static bool PilAvailable() => Check(PilMissing.Value, "python3-pil");

    /// <summary>True when pngcheck is there; false (local runs only) when that part of a test should be skipped.</summary>
    public static bool PngCheckAvailable() => Check(File.Exists(PngCheck) ? null : $"{PngCheck} not found", "pngcheck");

    /// <summary>
    /// Decodes <paramref name="png"/> with PIL after <c>verify()</c> (chunk CRCs, structure) and returns mode, size and the
    /// RGB bytes, row-major — what a browser would show.
    /// </summary>
    public static (string Mode, int Width, int Height, byte[] Rgb) DecodeWithPil(string png)
    {
        var raw = png + $".pil-{Guid.NewGuid():N}.rgb";
        try
        {
            const string script = """
                import sys
                from PIL import Image
                with Image.open(sys.argv[1]) as im:
                    im.verify()
                with Image.open(sys.argv[1]) as im:
                    im.load()
                    print(im.format, im.mode, im.size[0], im.size[1])
                    open(sys.argv[2], 'wb').write(im.convert('RGB').tobytes())
                """;
            var words = PythonPeer.Run(script, [png, raw]).Trim().Split(' ');
            Assert.Equal("PNG", words[0]);
            return (words[1], int.Parse(words[2]), int.Parse(words[3]), File.ReadAllBytes(raw));
        }
        finally
        {
            File.Delete(raw);
        }
    }

    /// <summary>Runs <c>pngcheck -v</c>; fails the test unless it reports the file OK. Returns its output.</summary>
    public static string RunPngCheck(string png)
    {
        var psi = new ProcessStartInfo(PngCheck, ["-v", png]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "pngcheck did not finish in 60 s");
        Assert.True(p.ExitCode == 0, $"pngcheck rejects {png} ({p.ExitCode}): {stdout.Result}{stderr.Result}");
        Assert.Contains("No errors detected", stdout.Result);
        return stdout.Result;
    }

    private static bool Check(string? why, string package)
    {
        if (why == null) return true;
        if (Environment.GetEnvironmentVariable("CI") == "true")
            Assert.Fail($"{why}; CI needs it: apt-get install -y {package}");
        Console.WriteLine($"skipping {package} check: {why} (apt-get install -y {package})");
        return false;
    }
}
