using System.Diagnostics;
using System.IO.Compression;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// What the single-machine verbs leave behind when they cannot finish: a stop signal (SIGINT, SIGTERM, SIGHUP), a full
/// disk, a folder given for a file (or the reverse), a spec or model JSON with a key given twice. Each case runs the
/// real binary and checks the exit code, that the message names the culprit, and that no temporary or half-written
/// file remains.
/// </summary>
public sealed class OutputSafetyTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-output-safety-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static readonly string[] Model = ["--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt")];

    private string Out(string name) => Path.Combine(_dir.FullName, name);

    private CliProcess.Result Run(params string[] args)
    {
        var r = CliProcess.Run(args);
        output.WriteLine($"exit {r.ExitCode}\n{r.Stderr}");
        return r;
    }

    /// <summary>Every entry below <paramref name="dir"/> (hidden temporary names included), as relative paths.</summary>
    private static string[] Entries(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(dir, p)).Order().ToArray();

    // ---- stop signals ----

    /// <summary>
    /// Starts <c>sample</c> (under <c>nohup</c> when asked) into <paramref name="folder"/>, sends SIG<paramref name="signal"/>
    /// while it streams into its temporary file, and returns its exit code and stderr.
    /// </summary>
    private async Task<(int Code, string Stderr)> SignalSample(string folder, string signal, bool nohup, params string[] work)
    {
        string[] command =
        [
            "dotnet", Path.Combine(AppContext.BaseDirectory, "dydit-eval.dll"), "sample", .. Model, "--threads", "1", .. work,
            "-o", Path.Combine(folder, "samples.npz"),
        ];
        if (nohup) command = ["nohup", .. command];
        var psi = new ProcessStartInfo(command[0], command[1..]) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        try
        {
            // Signal it while it streams into its temporary file, so there is something to clean up.
            var clock = Stopwatch.StartNew();
            while (!Entries(folder).Any(e => e.Contains(".tmp-")) && !p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(50);
            Assert.False(p.HasExited, $"sample ended (exit {(p.HasExited ? p.ExitCode : 0)}) before it could be signalled: {(p.HasExited ? await stderr : "")}");
            Assert.Contains(Entries(folder), e => e.Contains(".tmp-"));
            await Task.Delay(300);
            using (var kill = Process.Start("kill", ["-" + signal, p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) kill.WaitForExit();
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), $"sample did not end within 60 s of SIG{signal}");
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        string err = await stderr;
        await stdout;
        output.WriteLine(err);
        return (p.ExitCode, err);
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("HUP")]
    [InlineData("INT")]
    public async Task SampleStopsOnTheSignalWithExit130AndLeavesNoFile(string signal)
    {
        var folder = Directory.CreateDirectory(Out("samples")).FullName;
        var (code, err) = await SignalSample(folder, signal, nohup: false,
            "--vae", Fixtures.Path("vae", "vae_tiny"), "--num-samples", "64", "--steps", "1000");
        Assert.Equal(130, code);
        Assert.Contains("interrupted", err);
        Assert.Empty(Entries(folder)); // neither the temporary file nor a half samples.npz
    }

    [Fact]
    public async Task UnderNohupSampleIgnoresSighupAndFinishes()
    {
        var folder = Directory.CreateDirectory(Out("nohup")).FullName;
        var (code, err) = await SignalSample(folder, "HUP", nohup: true, "--latents", "--num-samples", "4", "--steps", "200");
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.Equal(["samples.npz"], Entries(folder));
    }

    // ---- full disk ----

    [Fact]
    public void SampleOntoAFullDiskExitsThreeNamingTheOutputAndLeavesNothing()
    {
        using var disk = FullDisk.TryMount(256);
        if (disk is null) return;
        var target = Path.Combine(disk.Path, "samples.npz");
        // 40 images of 64×64×3 bytes are 480 KiB: the disk fills up while they stream in.
        var r = Run(["sample", .. Model, "--vae", Fixtures.Path("vae", "vae_tiny"), "--num-samples", "40", "--steps", "2", "--threads", "1", "-o", target]);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains(target, r.Stderr);
        Assert.Contains("no space left on device", r.Stderr);
        Assert.DoesNotContain("internal error", r.Stderr);
        Assert.Empty(Entries(disk.Path));
    }

    private string InceptionWeights()
    {
        var weights = Out("pt_inception_fixture.pth");
        using var input = new GZipStream(File.OpenRead(Fixtures.Path("inception", "pt_inception_fixture_legacy.pth.gz")), CompressionMode.Decompress);
        using var file = File.Create(weights);
        input.CopyTo(file);
        return weights;
    }

    private string Images()
    {
        using var io = NpzArchive.Open(Fixtures.Path("inception", "inception_io.npz"));
        return NpzFiles.Write(_dir.FullName, "images.npz", NpzFiles.As("arr_0", io["images_256"]));
    }

    [Fact]
    public void FeaturesOntoAFullDiskExitsThreeNamingTheOutputAndLeavesNothing()
    {
        using var disk = FullDisk.TryMount(256);
        if (disk is null) return;
        disk.Fill();
        var target = Path.Combine(disk.Path, "features.npz");
        var r = Run("features", "--images", Images(), "--inception", InceptionWeights(), "--threads", "2", "-o", target);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains(target, r.Stderr);
        Assert.Contains("no space left on device", r.Stderr);
        Assert.Equal(["filler"], Entries(disk.Path));
    }

    [Fact]
    public void EvaluateJsonOntoAFullDiskExitsThreeNamingItAndLeavesNothing()
    {
        string reference, sample;
        using (var npz = NpzArchive.Open(Fixtures.Path("metrics", "small64.npz")))
        {
            reference = NpzFiles.Write(_dir.FullName, "ref.npz", NpzFiles.As("pool", npz["acts_ref"]));
            sample = NpzFiles.Write(_dir.FullName, "sample.npz", NpzFiles.As("pool", npz["acts_sample"]));
        }
        using var disk = FullDisk.TryMount(256);
        if (disk is null) return;
        disk.Fill();
        var json = Path.Combine(disk.Path, "metrics.json");
        var r = Run("evaluate", "--ref", reference, "--sample", sample, "--json", json);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains(json, r.Stderr);
        Assert.Contains("no space left on device", r.Stderr);
        Assert.Contains("FID: ", r.Stdout); // the result lines were printed before the file failed
        Assert.Equal(["filler"], Entries(disk.Path));
    }

    // ---- a folder where a file is expected, and the reverse ----

    [Fact]
    public void AnOutputThatIsAFolderIsRefusedBeforeAnyWork()
    {
        var folder = Directory.CreateDirectory(Out("taken")).FullName;
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "mine");
        var missing = Out("no-such-file.pt");
        // The inputs named after -o do not exist: the refusal names the folder, so it came before anything was read.
        var sample = Run("sample", "--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", missing, "--latents", "--num-samples", "2", "-o", folder);
        var features = Run("features", "--images", missing, "--inception", missing, "-o", folder);
        var evaluate = Run("evaluate", "--ref", missing, "--sample", missing, "--json", folder);
        foreach (var r in new[] { sample, features, evaluate })
        {
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"{folder}: is a directory", r.Stderr);
            Assert.DoesNotContain(missing, r.Stderr);
        }
        var file = Path.Combine(folder, "keep.txt");
        var report = Run("report", "--runs", folder, "-o", file);
        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{file}: is a file", report.Stderr);
        Assert.Equal(["keep.txt"], Entries(folder));
        Assert.Equal("mine", File.ReadAllText(file));
    }

    [Fact]
    public void AFolderGivenForAnInputFileSaysItIsADirectory()
    {
        var folder = Directory.CreateDirectory(Out("a-folder")).FullName;
        var weights = InceptionWeights();
        (string Option, CliProcess.Result Result)[] cases =
        [
            ("--checkpoint", Run("sample", "--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", folder, "--latents", "--num-samples", "2", "-o", Out("s.npz"))),
            ("--model", Run("sample", "--model", folder, "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"), "--latents", "--num-samples", "2", "-o", Out("s.npz"))),
            ("--images", Run("features", "--images", folder, "--inception", weights, "-o", Out("f.npz"))),
            ("--inception", Run("features", "--images", Images(), "--inception", folder, "-o", Out("f.npz"))),
        ];
        foreach (var (option, r) in cases)
        {
            Assert.True(r.ExitCode == 1, $"{option}: exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains($"{folder}: is a directory; {option} takes a file", r.Stderr);
        }
        Assert.False(File.Exists(Out("s.npz")));
        Assert.False(File.Exists(Out("f.npz")));
    }

    // ---- keys given twice ----

    private string Spec(string name, string json)
    {
        var path = Out(name);
        File.WriteAllText(path, json);
        return path;
    }

    private static string F(params string[] p) => Fixtures.Path(p).Replace("\\", "/");

    [Fact]
    public void ARunSpecWithAKeyGivenTwiceIsRefusedNamingFileAndKey()
    {
        string run = $$"""
            "model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{F("dit", "dit_tiny.pt")}}", "vae": "{{F("vae", "vae_tiny")}}",
            "num_samples": 4, "steps": 2, "output": "out/x"
            """;
        var single = Spec("single.json", $$"""{"name": "a", "seed": 1, {{run}}, "seed": 2}""");
        var multi = Spec("multi.json", $$"""{"defaults": {{{run}}}, "runs": [{"name": "a"}, {"name": "b", "cfg_scale": 1.5, "cfg_scale": 4}]}""");
        foreach (var (spec, key) in new[] { (single, "'seed'"), (multi, "'runs[1].cfg_scale'") })
        {
            var r = Run("run", "--config", spec, "--workers", "1", "--threads", "1");
            Assert.Equal(1, r.ExitCode);
            Assert.Contains(spec, r.Stderr);
            Assert.Contains($"key {key} is given twice", r.Stderr);
        }
        Assert.False(Directory.Exists(Out("out")));
    }

    [Fact]
    public void AModelJsonWithAKeyGivenTwiceIsRefusedNamingFileAndKey()
    {
        var text = File.ReadAllText(Fixtures.Path("dit", "dit_tiny.json"));
        int at = text.IndexOf("\"depth\"", StringComparison.Ordinal);
        Assert.True(at > 0);
        var model = Spec("model.json", text.Insert(at, "\"depth\": 3, "));
        var target = Out("s.npz");
        var r = Run("sample", "--model", model, "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"), "--latents", "--num-samples", "2", "--steps", "2", "-o", target);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(model, r.Stderr);
        Assert.Contains("'depth'", r.Stderr);
        Assert.False(File.Exists(target));
    }
}
