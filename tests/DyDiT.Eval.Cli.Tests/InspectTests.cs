using System.Text.Json;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary><c>dydit-eval inspect --json</c> against the fixture manifests (npz/ and checkpoints/).</summary>
public sealed class InspectTests
{
    private sealed record Expected(string Name, long[] Shape, string DType, string Sha256);

    public static TheoryData<string> NpzFiles()
    {
        var data = new TheoryData<string>();
        using var m = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("npz", "manifest.json")));
        foreach (var f in m.RootElement.GetProperty("files").EnumerateObject()) data.Add(f.Name);
        return data;
    }

    public static TheoryData<string> CheckpointFiles()
    {
        var data = new TheoryData<string>();
        using var m = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("checkpoints", "manifest.json")));
        foreach (var f in m.RootElement.GetProperty("files").EnumerateObject()) data.Add(f.Name);
        return data;
    }

    // numpy descr ('<f4', '>i8', '|u1', '|b1') → numpy dtype name
    private static string DescrToName(string descr)
    {
        char kind = descr[1];
        int size = int.Parse(descr[2..]);
        return kind switch
        {
            'f' => $"float{size * 8}",
            'i' => $"int{size * 8}",
            'u' => $"uint{size * 8}",
            'b' => "bool",
            _ => throw new InvalidDataException("unexpected descr " + descr),
        };
    }

    private static long[] Shape(JsonElement e) => e.EnumerateArray().Select(d => d.GetInt64()).ToArray();

    private static (string Format, List<Expected> Tensors) Inspect(string path)
    {
        var r = CliProcess.Run("inspect", path, "--json");
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines); // exactly one JSON object
        using var doc = JsonDocument.Parse(lines[0]);
        var root = doc.RootElement;
        Assert.Equal(path, root.GetProperty("file").GetString());
        var tensors = root.GetProperty("tensors").EnumerateArray().Select(t => new Expected(
            t.GetProperty("name").GetString()!, Shape(t.GetProperty("shape")),
            t.GetProperty("dtype").GetString()!, t.GetProperty("sha256").GetString()!)).ToList();
        return (root.GetProperty("format").GetString()!, tensors);
    }

    [Theory]
    [MemberData(nameof(NpzFiles))]
    public void NpzAndNpyMatchManifest(string file)
    {
        using var m = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("npz", "manifest.json")));
        var entry = m.RootElement.GetProperty("files").GetProperty(file);
        string kind = entry.GetProperty("kind").GetString()!;
        var expected = new List<Expected>();
        if (kind == "npy")
        {
            expected.Add(new Expected("", Shape(entry.GetProperty("shape")), DescrToName(entry.GetProperty("dtype").GetString()!),
                entry.GetProperty("sha256_c_le").GetString()!));
        }
        else
        {
            foreach (var member in entry.GetProperty("members").EnumerateArray())
            {
                var name = member.GetProperty("member").GetString()!;
                expected.Add(new Expected(name.EndsWith(".npy") ? name[..^4] : name, Shape(member.GetProperty("shape")),
                    DescrToName(member.GetProperty("dtype").GetString()!), member.GetProperty("sha256_c_le").GetString()!));
            }
        }

        var (format, actual) = Inspect(Fixtures.Path("npz", file));
        Assert.Equal(kind, format);
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Name, actual[i].Name);
            Assert.Equal(expected[i].Shape, actual[i].Shape);
            Assert.Equal(expected[i].DType, actual[i].DType);
            Assert.Equal(expected[i].Sha256, actual[i].Sha256);
        }
    }

    [Theory]
    [MemberData(nameof(CheckpointFiles))]
    public void CheckpointsMatchManifest(string file)
    {
        using var m = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("checkpoints", "manifest.json")));
        var facts = m.RootElement.GetProperty("files").GetProperty(file);
        string expectedFormat = facts.GetProperty("format").GetString() == "zip" ? "torch-zip" : "torch-legacy";
        var objects = m.RootElement.GetProperty("objects").GetProperty(file.StartsWith("state_dict") ? "state_dict" : "checkpoint");
        var expected = new Dictionary<string, Expected>();
        foreach (var o in objects.EnumerateObject())
        {
            if (!o.Value.TryGetProperty("sha256_values_le", out var sha)) continue;
            var name = o.Name.TrimStart('/');
            expected[name] = new Expected(name, Shape(o.Value.GetProperty("shape")), o.Value.GetProperty("dtype").GetString()!, sha.GetString()!);
        }

        var (format, actual) = Inspect(Fixtures.Path("checkpoints", file));
        Assert.Equal(expectedFormat, format);
        Assert.Equal(expected.Keys.Order(), actual.Select(a => a.Name).Order());
        foreach (var a in actual)
        {
            var e = expected[a.Name];
            Assert.True(e.Shape.SequenceEqual(a.Shape), $"{a.Name}: shape");
            Assert.Equal(e.DType, a.DType);
            Assert.Equal(e.Sha256, a.Sha256);
        }
    }

    [Fact]
    public void SafetensorsAreListedWithTheirValueHashes()
    {
        // Two tensors written by hand: header length, JSON header, then the raw little-endian data.
        var a = new float[] { 1.5f, -2f, 3.25f, 0f, 7f, -0.5f };
        var b = new byte[] { 0, 255, 7 };
        var aBytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).ToArray();
        var header = System.Text.Encoding.UTF8.GetBytes(
            "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}," +
            "\"mask\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[24,27]}}");
        var file = Path.Combine(Path.GetTempPath(), $"dydit-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(file, [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. aBytes, .. b]);
        try
        {
            var (format, tensors) = Inspect(file);
            Assert.Equal("safetensors", format);
            var byName = tensors.ToDictionary(t => t.Name);
            Assert.Equal([2L, 3], byName["w"].Shape);
            Assert.Equal("float32", byName["w"].DType);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(aBytes)), byName["w"].Sha256);
            Assert.Equal("uint8", byName["mask"].DType);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(b)), byName["mask"].Sha256);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void TextModePrintsATable()
    {
        var r = CliProcess.Run("inspect", Fixtures.Path("npz", "savez_samples_labels.npz"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("arr_0", r.Stdout);
        Assert.Contains("[6, 16, 16, 3]", r.Stdout);
        Assert.Contains("uint8", r.Stdout);
    }

    [Fact]
    public void MissingFileIsBadInput()
    {
        var r = CliProcess.Run("inspect", "/nonexistent/x.npz", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("/nonexistent/x.npz", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void MissingArgumentIsUsageError()
    {
        var r = CliProcess.Run("inspect");
        Assert.Equal(2, r.ExitCode);
    }

    [Fact]
    public void CorruptedFilesExitOneWithOneLine()
    {
        var dir = Directory.CreateTempSubdirectory("dydit-inspect-");
        try
        {
            var cases = new List<(string Name, byte[] Bytes)>();
            var npz = File.ReadAllBytes(Fixtures.Path("npz", "savez_samples_labels.npz"));
            cases.Add(("truncated.npz", npz[..(npz.Length / 2)]));
            var npy = File.ReadAllBytes(Fixtures.Path("npz", "f32.npy"));
            var badMagic = (byte[])npy.Clone();
            badMagic[1] = (byte)'X';
            cases.Add(("badmagic.npy", badMagic));
            cases.Add(("short.npy", npy[..(npy.Length - 5)]));
            var pt = File.ReadAllBytes(Fixtures.Path("checkpoints", "checkpoint_legacy.pt"));
            cases.Add(("truncated.pt", pt[..(pt.Length - 100)]));
            cases.Add(("garbage.pt", [1, 2, 3, 4, 5, 6, 7, 8, 9]));
            foreach (var (name, bytes) in cases)
            {
                var path = Path.Combine(dir.FullName, name);
                File.WriteAllBytes(path, bytes);
                var r = CliProcess.Run("inspect", path, "--json");
                Assert.True(r.ExitCode == 1, $"{name}: exit {r.ExitCode}, stderr {r.Stderr}");
                var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(lines.Length == 1, $"{name}: expected one line, got: {r.Stderr}");
                Assert.Contains(path, lines[0]);
                Assert.Equal("", r.Stdout);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
