using System.Diagnostics;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Tests.Torch;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// inspect and forward on hostile or misplaced paths: views that would expand without bound, names carrying
/// terminal escapes, folders where files belong, outputs that cannot be written.
/// </summary>
public sealed class FileFaultTests : IDisposable
{
    private const string Esc = "\u001b";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-filefault-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string ForwardInputs()
    {
        using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
        return NpzFiles.Write(_dir.FullName, "in.npz", NpzFiles.As("x", io["x"]), NpzFiles.As("t", io["t"]), NpzFiles.As("y", io["y"]));
    }

    private static string[] Forward(string checkpoint, string inputs, string output) =>
        ["forward", "--net", "dit", "--config", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", checkpoint, "--inputs", inputs, "-o", output];

    /// <summary>A zip checkpoint {key: float tensor on a 4-element storage, with the given size and stride}.</summary>
    private string ViewCheckpoint(string name, string key, long[] size, long[] stride)
    {
        var p = new PickleBuilder().Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Str(key)
            .Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(4).Tuple().Op((byte)'Q')
            .Int(0).Mark();
        foreach (var s in size) p.Int(checked((int)s));
        p.Tuple().Mark();
        foreach (var s in stride) p.Int(checked((int)s));
        p.Tuple().Op(0x89).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce().Op((byte)'s').Stop();
        var values = new byte[16];
        for (int i = 0; i < 4; i++) BitConverter.TryWriteBytes(values.AsSpan(4 * i), i + 0.5f);
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllBytes(path, CheckpointFiles.Zip(("archive/data.pkl", p.ToArray()), ("archive/data/0", values), ("archive/version", "3\n"u8.ToArray())));
        return path;
    }

    [Fact]
    public void ZeroStrideViewOfATinyStorageIsRefusedAtOnceNamingTheKey()
    {
        // 1 KB on disk, 10^10 elements as a view: hashing it used to take hours.
        var file = ViewCheckpoint("expanded.pt", "blocks.0.attn.qkv.weight", [100_000, 100_000], [0, 0]);
        Assert.True(new FileInfo(file).Length < 2048);
        foreach (var json in new[] { false, true })
        {
            var clock = Stopwatch.StartNew();
            var r = CliProcess.Run(json ? ["inspect", file, "--json"] : ["inspect", file]);
            clock.Stop();
            Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains(file, r.Stderr);
            Assert.Contains("'blocks.0.attn.qkv.weight'", r.Stderr);
            Assert.Contains("10000000000 elements", r.Stderr);
            Assert.Equal("", r.Stdout);
            // The process itself starts in about half a second; the refusal adds nothing measurable.
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed.TotalSeconds:F1} s");
        }
    }

    [Fact]
    public void ModestlyRepeatedViewsStillLoadWithTheirValues()
    {
        // expand() of a 4-element storage to [1000, 4] (4000 elements, under the cap) is a legitimate torch.save result.
        var file = ViewCheckpoint("expand_ok.pt", "bias", [1000, 4], [0, 1]);
        var r = CliProcess.Run("inspect", file, "--json");
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var doc = JsonDocument.Parse(r.Stdout);
        var t = doc.RootElement.GetProperty("tensors")[0];
        Assert.Equal("bias", t.GetProperty("name").GetString());
        var expected = new byte[1000 * 16];
        for (int row = 0; row < 1000; row++)
            for (int i = 0; i < 4; i++) BitConverter.TryWriteBytes(expected.AsSpan(row * 16 + 4 * i), i + 0.5f);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(expected)), t.GetProperty("sha256").GetString());
    }

    [Fact]
    public void ControlCharactersInNpzMemberNamesAreShownEscaped()
    {
        string evil = $"ev{Esc}[2J\u0007"; // short enough for the table's name column at 80 characters
        var file = NpzFiles.Write(_dir.FullName, "ansi.npz", (evil, DType.Float32, [2L], new byte[8]));

        var table = CliProcess.Run("inspect", file);
        Assert.True(table.ExitCode == 0, $"exit {table.ExitCode}: {table.Stderr}");
        Assert.DoesNotContain(Esc, table.Stdout);
        Assert.DoesNotContain("\u0007", table.Stdout);
        Assert.Contains("ev\\u001b[2J\\u0007", table.Stdout);

        // JSON stays valid and carries the name exactly (the writer escapes it as JSON).
        var json = CliProcess.Run("inspect", file, "--json");
        Assert.True(json.ExitCode == 0, $"exit {json.ExitCode}: {json.Stderr}");
        Assert.DoesNotContain(Esc, json.Stdout);
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal(evil, doc.RootElement.GetProperty("tensors")[0].GetProperty("name").GetString());
    }

    [Fact]
    public void ControlCharactersInMessagesAreShownEscaped()
    {
        // A missing array named after the members the inputs hold: forward lists them in its message.
        var inputs = NpzFiles.Write(_dir.FullName, "in_ansi.npz", ($"x{Esc}[31m", DType.Float32, [1L], new byte[4]));
        var r = CliProcess.Run(Forward(Fixtures.Path("dit", "dit_tiny.pt"), inputs, Path.Combine(_dir.FullName, "o.npz")));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(inputs, r.Stderr);
        Assert.Contains("'x'", r.Stderr);
        Assert.Contains("x\\u001b[31m", r.Stderr);
        Assert.DoesNotContain(Esc, r.Stderr);
        Assert.False(File.Exists(Path.Combine(_dir.FullName, "o.npz")));
    }

    [Fact]
    public void AFolderWhereAFileBelongsIsSaidToBeAFolder()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "a folder")).FullName;
        var r = CliProcess.Run("inspect", folder);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(folder, r.Stderr);
        Assert.Contains("is a directory", r.Stderr);

        var inputs = ForwardInputs();
        string output = Path.Combine(_dir.FullName, "o.npz");
        r = CliProcess.Run(Forward(folder, inputs, output));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(folder, r.Stderr);
        Assert.Contains("is a directory", r.Stderr);

        r = CliProcess.Run(Forward(Fixtures.Path("dit", "dit_tiny.pt"), folder, output));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(folder, r.Stderr);
        Assert.Contains("is a directory", r.Stderr);

        r = CliProcess.Run("forward", "--net", "dit", "--config", folder, "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"), "--inputs", inputs, "-o", output);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(folder, r.Stderr);
        Assert.Contains("is a directory", r.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void AnOutputThatIsAFolderIsRefusedBeforeAnyCompute()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "out.npz")).FullName;
        var r = CliProcess.Run(Forward(Fixtures.Path("dit", "dit_tiny.pt"), ForwardInputs(), folder));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(folder, r.Stderr);
        Assert.Contains("is a directory", r.Stderr);
        Assert.DoesNotContain("wrote", r.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(folder));
        Assert.Empty(Directory.GetFiles(_dir.FullName, "*.tmp-*"));
    }

    [Fact]
    public void AWriteFailureIsAnEnvironmentErrorNamingThePath()
    {
        // One 4 KiB page: the temp file is created, the ~13 KB of outputs do not fit.
        using var disk = FullDisk.TryMount(kib: 4);
        if (disk == null) return;
        var inputs = ForwardInputs();
        string output = Path.Combine(disk.Path, "out.npz");
        var r = CliProcess.Run(Forward(Fixtures.Path("dit", "dit_tiny.pt"), inputs, output));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains(disk.Path, r.Stderr);
        Assert.Contains("out.npz", r.Stderr);
        Assert.DoesNotContain("internal error", r.Stderr);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(disk.Path, "*.tmp-*"));
    }
}
