using System.Globalization;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>dydit-eval demo init</c>: the files appear, a non-empty folder is refused (exit 1) unless <c>--force</c>, bad
/// options are usage errors (exit 2), and the assets drive the real verbs: sample with a DyDiT demo model, then
/// evaluate against the demo reference with the demo Inception weights.
/// </summary>
public sealed class DemoTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-demo-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static readonly string[] Listed =
    [
        "models/dit-demo.pt", "models/dit-demo.json", "models/dydit-demo-0.7.pt", "models/dydit-demo-0.7.json",
        "models/dydit-demo-0.5.pt", "models/dydit-demo-0.5.json", "models/vae-demo/config.json",
        "models/vae-demo/diffusion_pytorch_model.safetensors", "models/pt_inception-demo.pth", "reference/demo-ref.npz",
        "runs/dit-demo.json", "runs/dydit-demo-0.7.json", "runs/dydit-demo-0.5.json", "README.md",
    ];

    [Fact]
    public void InitCreatesTheAssetsAndThePipelineRunsOnThem()
    {
        string demo = P("demo");
        var init = CliProcess.Run("demo", "init", demo, "--seed", "3", "--reference-samples", "8", "--num-samples", "20", "--steps", "5");
        Assert.True(init.ExitCode == 0, init.Stderr);
        foreach (var f in Listed) Assert.True(File.Exists(Path.Combine(demo, f)), f);
        Assert.Equal(Listed.Length, init.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("\"num_samples\": 20", File.ReadAllText(Path.Combine(demo, "runs", "dit-demo.json")));
        Assert.Contains("\"steps\": 5", File.ReadAllText(Path.Combine(demo, "runs", "dit-demo.json")));

        string samples = Path.Combine(demo, "out", "dydit-demo-0.5.npz");
        var sample = CliProcess.Run("sample", "--model", Path.Combine(demo, "models", "dydit-demo-0.5.json"),
            "--checkpoint", Path.Combine(demo, "models", "dydit-demo-0.5.pt"), "--vae", Path.Combine(demo, "models", "vae-demo"),
            "--num-samples", "4", "--steps", "5", "--cfg-scale", "1.5", "-o", samples);
        Assert.True(sample.ExitCode == 0, sample.Stderr);

        var evaluate = CliProcess.RunWith([("DYDIT_CACHE", P("cache"))], "evaluate", "--ref", Path.Combine(demo, "reference", "demo-ref.npz"),
            "--sample", samples, "--inception", Path.Combine(demo, "models", "pt_inception-demo.pth"), "--split-size", "4");
        Assert.True(evaluate.ExitCode == 0, evaluate.Stderr);
        var fid = evaluate.Stdout.Split('\n').Single(l => l.StartsWith("FID: ", StringComparison.Ordinal));
        Assert.True(double.TryParse(fid["FID: ".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value), fid);
    }

    [Fact]
    public void NonEmptyFolderIsRefusedUnlessForced()
    {
        string demo = P("busy");
        Directory.CreateDirectory(demo);
        File.WriteAllText(Path.Combine(demo, "notes.txt"), "keep");
        var refused = CliProcess.Run("demo", "init", demo, "--reference-samples", "2");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("not empty", refused.Stderr);
        Assert.Contains("--force", refused.Stderr);
        Assert.Single(Directory.EnumerateFileSystemEntries(demo));

        var forced = CliProcess.Run("demo", "init", demo, "--reference-samples", "2", "--force");
        Assert.True(forced.ExitCode == 0, forced.Stderr);
        Assert.True(File.Exists(Path.Combine(demo, "models", "dit-demo.pt")));
        Assert.Equal("keep", File.ReadAllText(Path.Combine(demo, "notes.txt")));
    }

    [Theory]
    [InlineData("--steps", "1")]
    [InlineData("--num-samples", "0")]
    [InlineData("--reference-samples", "-5")]
    [InlineData("--seed", "-1")]
    public void BadOptionsAreUsageErrors(string option, string value)
    {
        var r = CliProcess.Run("demo", "init", P("never"), option, value);
        Assert.Equal(2, r.ExitCode);
        Assert.False(Directory.Exists(P("never")));
    }
}
