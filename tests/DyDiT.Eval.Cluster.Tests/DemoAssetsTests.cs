using System.Security.Cryptography;
using System.Text.Json;
using DyDiT.Eval.Cluster.Demo;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Evaluation.Inception;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Vae;
using DyDiT.Eval.Workers.Sampling;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Cluster.Tests;

/// <summary>One demo folder (seed 0, a small reference batch), made once for the test class.</summary>
public sealed class DemoFolder : IDisposable
{
    public const int ReferenceSamples = 12;

    public DemoFolder()
    {
        Root = Directory.CreateTempSubdirectory("dydit-demo-").FullName;
        Dir = Path.Combine(Root, "demo");
        Files = DemoAssets.Create(Dir, new DemoOptions(Seed: 0, NumSamples: 40, Steps: 10, ReferenceSamples: ReferenceSamples));
    }

    public string Root { get; }

    public string Dir { get; }

    public IReadOnlyList<string> Files { get; }

    public string P(string relative) => Path.Combine(Dir, relative);

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>
/// The demo assets load with our strict loaders and behave: finite, non-constant outputs; the DyDiT routers switch off a
/// share of work that depends on the timestep and on λ; the layouts equal the official ones recorded in the fixtures;
/// the same seed gives the same bytes.
/// </summary>
public sealed class DemoAssetsTests(DemoFolder demo, ITestOutputHelper output) : IClassFixture<DemoFolder>, IDisposable
{
    private readonly IBackend _cpu = Backends.Create("cpu", threads: 1);

    public void Dispose() => _cpu.Dispose();

    private static readonly string[] ExpectedFiles =
    [
        "models/dit-demo.pt", "models/dit-demo.json",
        "models/dydit-demo-0.7.pt", "models/dydit-demo-0.7.json",
        "models/dydit-demo-0.5.pt", "models/dydit-demo-0.5.json",
        "models/vae-demo/config.json", "models/vae-demo/diffusion_pytorch_model.safetensors",
        "models/pt_inception-demo.pth",
        "reference/demo-ref.npz",
        "runs/dit-demo.json", "runs/dydit-demo-0.7.json", "runs/dydit-demo-0.5.json",
        "README.md",
    ];

    private static (float[] Values, int[] Shape) Normal(int seed, double scale, params int[] shape)
    {
        var rng = new Random(seed);
        var v = new float[shape.Aggregate(1, (a, d) => a * d)];
        for (int i = 0; i < v.Length; i++)
            v[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return (v, shape);
    }

    private static (double Mean, double Std, double Max) Stats(ReadOnlySpan<float> v)
    {
        double sum = 0, sq = 0, max = 0;
        foreach (var x in v)
        {
            Assert.True(float.IsFinite(x), "non-finite value");
            sum += x;
            sq += (double)x * x;
            max = Math.Max(max, Math.Abs(x));
        }
        double mean = sum / v.Length;
        return (mean, Math.Sqrt(Math.Max(0, sq / v.Length - mean * mean)), max);
    }

    private static Dictionary<string, string> Hashes(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f).Replace('\\', '/'), f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void WritesTheListedFilesAndNothingElse()
    {
        Assert.Equal(ExpectedFiles.Order(StringComparer.Ordinal), demo.Files.Order(StringComparer.Ordinal));
        var onDisk = Directory.EnumerateFiles(demo.Dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(demo.Dir, f).Replace('\\', '/'));
        Assert.Equal(ExpectedFiles.Order(StringComparer.Ordinal), onDisk.Order(StringComparer.Ordinal)); // no temporary files left
        Assert.InRange(new FileInfo(demo.P("models/pt_inception-demo.pth")).Length, 95_000_000, 97_000_000);
        Assert.Contains("random", File.ReadAllText(demo.P("README.md")), StringComparison.Ordinal);
    }

    // ---- DiT ----

    [Fact]
    public void DitStateDictHasTheOfficialKeysAndShapes()
    {
        // dydit_tiny.json records the official DyDiT state dict of the same constructor kwargs; DiT's is it without routers.
        var fixture = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("dydit", "dydit_tiny.json"))).RootElement;
        var kwargs = JsonDocument.Parse(File.ReadAllText(demo.P("models/dit-demo.json"))).RootElement.GetProperty("constructor_kwargs");
        Assert.Equal(fixture.GetProperty("constructor_kwargs").GetRawText().Replace(" ", "").Replace("\n", ""), kwargs.GetRawText().Replace(" ", "").Replace("\n", ""));
        var official = fixture.GetProperty("state_dict").EnumerateArray().Select(e => e.GetString()!).ToList();
        bool IsRouter(string line) => line.Contains("_rate.router", StringComparison.Ordinal) || line.Contains("token_selection", StringComparison.Ordinal);
        Assert.Equal(official.Where(l => !IsRouter(l)), Listing(demo.P("models/dit-demo.pt")));
        foreach (var lambda in new[] { "0.7", "0.5" })
            Assert.Equal(official, Listing(demo.P($"models/dydit-demo-{lambda}.pt")));
    }

    private static List<string> Listing(string checkpoint)
    {
        using var ckpt = TorchCheckpoint.Open(checkpoint);
        return ckpt.StateDict().Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.Shape)}] {kv.Value.DType.NumpyName()}").ToList();
    }

    [Fact]
    public void DitLoadsStrictlyAndGivesVariedOutputsThatDependOnTheClass()
    {
        using var model = DiffusionModels.Load(demo.P("models/dit-demo.json"), demo.P("models/dit-demo.pt"), _cpu, net: "dit");
        var config = DitConfig.FromJson(File.ReadAllText(demo.P("models/dit-demo.json")));
        using var dit = Dit.Load(demo.P("models/dit-demo.pt"), config, _cpu);
        var (z, shape) = Normal(1, 1, 4, 4, 8, 8);
        using var x = _cpu.FromHost(z, shape);
        using var a = dit.Forward(x, [999, 500, 100, 0], [3, 3, 3, 3]);
        using var b = dit.Forward(x, [999, 500, 100, 0], [10, 10, 10, 10]); // the null class
        var (mean, std, _) = Stats(a.Output.ToArray());
        output.WriteLine($"DiT output mean {mean:F3}, std {std:F3}");
        Assert.InRange(std, 0.2, 20);
        double diff = a.Output.ToArray().Zip(b.Output.ToArray(), (p, q) => Math.Abs(p - q)).Average();
        output.WriteLine($"mean |out(class 3) − out(null)| = {diff:F3}");
        Assert.True(diff > 0.05 * std, "the class label barely changes the output, so guidance would do nothing");
    }

    // ---- DyDiT ----

    [Theory]
    [InlineData(0.7)]
    [InlineData(0.5)]
    public void DyDitRoutersSwitchOffATimestepDependentShare(double lambda)
    {
        string name = DemoAssets.DyDitModel(lambda);
        using var model = DiffusionModels.Load(demo.P($"models/{name}.json"), demo.P($"models/{name}.pt"), _cpu, net: "dydit");
        var config = DitConfig.FromJson(File.ReadAllText(demo.P($"models/{name}.json")));
        using var dydit = DyDit.Load(demo.P($"models/{name}.pt"), config, _cpu);
        const int B = 8;
        var ratios = new List<(long T, double Ratio, double Heads, double Groups, double Tokens)>();
        foreach (long t in new long[] { 0, 100, 250, 400, 500, 600, 750, 900, 999 })
        {
            var (z, shape) = Normal((int)t + 7, 1, B, 4, 8, 8);
            using var x = _cpu.FromHost(z, shape);
            var labels = Enumerable.Range(0, B).Select(i => (long)(i % 11)).ToArray(); // null class included
            using var r = dydit.Forward(x, Enumerable.Repeat(t, B).ToArray(), labels);
            Assert.True(Stats(r.Output.ToArray()).Std > 0.1);
            var (heads, groups, tokens) = r.Routing.MaskMeans();
            ratios.Add((t, r.MacRatio, heads, groups, tokens));
            output.WriteLine($"λ {lambda}: t = {t,3}: MAC ratio {r.MacRatio:F3} (heads on {heads:F3}, MLP groups on {groups:F3}, tokens on {tokens:F3})");
        }
        double average = ratios.Average(r => r.Ratio);
        output.WriteLine($"λ {lambda}: mean MAC ratio over t {average:F3}");
        Assert.InRange(average, lambda - 0.12, lambda + 0.12);
        var first = ratios[0];
        var last = ratios[^1];
        Assert.True(first.Ratio - last.Ratio > 0.15, $"MAC ratio at t=0 ({first.Ratio:F3}) and t=999 ({last.Ratio:F3}) should differ clearly");
        Assert.True(last.Heads < 1 && last.Groups < 1, "some heads and MLP groups are off at t = 999");
        Assert.InRange(ratios.Average(r => r.Tokens), 0.5, 0.99); // some tokens skip the MLP, most do not
    }

    [Fact]
    public void SmallerLambdaDoesLessWork()
    {
        double Average(double lambda)
        {
            string name = DemoAssets.DyDitModel(lambda);
            using var dydit = DyDit.Load(demo.P($"models/{name}.pt"), DemoAssets.ModelConfig, _cpu);
            var (z, shape) = Normal(3, 1, 11, 4, 8, 8);
            using var x = _cpu.FromHost(z, shape);
            var t = Enumerable.Range(0, 11).Select(i => (long)(i * 99.9)).ToArray();
            using var r = dydit.Forward(x, t, Enumerable.Range(0, 11).Select(i => (long)i).ToArray());
            return r.MacRatio;
        }
        Assert.True(Average(0.5) < Average(0.7) - 0.1);
    }

    [Fact]
    public void DyDitBackboneIsTheDitDemo()
    {
        using var dit = TorchCheckpoint.Open(demo.P("models/dit-demo.pt"));
        using var dydit = TorchCheckpoint.Open(demo.P("models/dydit-demo-0.5.pt"));
        var routed = dydit.StateDict();
        foreach (var (key, tensor) in dit.StateDict())
            Assert.True(tensor.ValuesSha256() == routed[key].ValuesSha256(), key);
    }

    // ---- VAE ----

    [Fact]
    public void VaeLayoutEqualsDiffusersSavePretrained()
    {
        // The fixtures' tiny VAE was written by diffusers 0.25.1 save_pretrained; the demo generator with its shape must give
        // the same config.json fields and the same keys and shapes.
        var fixtureFolder = Fixtures.Path("vae", "vae_tiny");
        var shape = new DemoVae.Shape([8, 16, 16, 16], LayersPerBlock: 1, NormNumGroups: 4, SampleSize: 32);
        var ours = JsonDocument.Parse(DemoVae.ConfigJson(shape)).RootElement;
        var theirs = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixtureFolder, "config.json"))).RootElement;
        Assert.Equal(theirs.EnumerateObject().Select(p => p.Name).Order(), ours.EnumerateObject().Select(p => p.Name).Order());
        foreach (var p in theirs.EnumerateObject()) Assert.True(p.Value.GetRawText() == ours.GetProperty(p.Name).GetRawText(), p.Name);

        var weights = DemoVae.Weights(shape, new DemoRandom(0, "vae"));
        using var file = TensorFile.Open(Path.Combine(fixtureFolder, "diffusion_pytorch_model.safetensors"));
        var expected = file.Tensors.ToDictionary(t => t.Name, t => string.Join(",", t.Shape));
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), weights.Keys.Order(StringComparer.Ordinal));
        foreach (var key in weights.Keys) Assert.True(expected[key] == string.Join(",", weights.Shape(key)), key);
    }

    [Fact]
    public void VaeDecodesLatentsIntoVariedUnsaturatedImages()
    {
        using var vae = VaeDecoder.Load(demo.P("models/vae-demo"), _cpu);
        Assert.Equal(8, vae.Config.UpsampleFactor);
        var (z, shape) = Normal(5, 1 / VaeDecoder.LatentScale, 3, 4, 8, 8);
        using var latents = _cpu.FromHost(z, shape);
        using var images = vae.Decode(latents);
        Assert.Equal([3, 3, 64, 64], images.Shape.ToArray());
        var pixels = images.ToArray();
        var (mean, std, _) = Stats(pixels);
        double saturated = pixels.Count(v => Math.Abs(v) >= 1) / (double)pixels.Length;
        output.WriteLine($"VAE output mean {mean:F3}, std {std:F3}, |x| >= 1 on {saturated:P1}");
        Assert.InRange(std, 0.1, 0.8);
        Assert.True(saturated < 0.05);
        // different latents, different images
        var perImage = Enumerable.Range(0, 3).Select(i => pixels.AsSpan(i * 3 * 64 * 64, 3 * 64 * 64).ToArray()).ToList();
        Assert.True(perImage[0].Zip(perImage[1], (a, b) => Math.Abs(a - b)).Average() > 0.05);
    }

    // ---- Inception ----

    [Fact]
    public void InceptionHasThePublishedKeysShapesAndOrder()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("inception", "manifest.json")));
        var published = manifest.RootElement.GetProperty("weights").GetProperty("tensors").EnumerateObject()
            .Select(p => $"{p.Name} [{string.Join(", ", p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()))}] float32").ToList();
        Assert.Equal(472, published.Count);
        var ours = Listing(demo.P("models/pt_inception-demo.pth"));
        Assert.Equal(published, ours);
        using var ckpt = TorchCheckpoint.Open(demo.P("models/pt_inception-demo.pth"));
        Assert.Equal(23_885_392, ckpt.Tensors.Sum(t => t.ElementCount));
        foreach (var t in ckpt.Tensors.Where(t => t.Name.EndsWith("running_var", StringComparison.Ordinal)))
            Assert.True(t.ToFloat32().All(v => v > 0), t.Name);
    }

    [Fact]
    public void InceptionGivesFiniteFeaturesThatDifferBetweenImages()
    {
        using var network = FidInceptionV3.Load(demo.P("models/pt_inception-demo.pth"), _cpu);
        var features = FeatureExtractor.Extract(demo.P("reference/demo-ref.npz"), network, PreprocessMode.Adm, batchSize: 4);
        Assert.Equal(DemoFolder.ReferenceSamples, features.Count);
        var pool = Stats(features.Pool);
        var logits = Stats(features.Logits);
        var spatial = Stats(features.Spatial);
        output.WriteLine($"pool mean {pool.Mean:F3} std {pool.Std:F3} max {pool.Max:F3}; logits std {logits.Std:F3}; spatial mean {spatial.Mean:F3}");
        Assert.InRange(pool.Mean, 0.05, 20);
        Assert.True(logits.Std > 0.1 && spatial.Std > 0.01);
        int d = FidInceptionV3.PoolFeatures;
        double between = Enumerable.Range(0, d).Average(j => Math.Abs(features.Pool[j] - features.Pool[d + j]));
        Assert.True(between > 1e-3, $"pool features of two images differ by {between} on average");
    }

    // ---- reference batch and run specs ----

    [Fact]
    public void ReferenceBatchHasAdmLayout()
    {
        using var npz = NpzArchive.Open(demo.P("reference/demo-ref.npz"));
        Assert.Equal(["arr_0", "labels"], npz.Arrays.Select(a => a.Name));
        Assert.Equal(DType.UInt8, npz["arr_0"].DType);
        Assert.Equal([DemoFolder.ReferenceSamples, 64, 64, 3], npz["arr_0"].Shape);
        Assert.Equal(DType.Int64, npz["labels"].DType);
        var labels = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(npz["labels"].ReadAllBytes()).ToArray();
        Assert.All(labels, l => Assert.InRange(l, 0, 9));
        var pixels = npz["arr_0"].ReadAllBytes();
        Assert.InRange(pixels.Average(p => (double)p), 60, 200);
        Assert.True(pixels.Count(p => p is 0 or 255) < pixels.Length / 20, "saturated images");
    }

    [Fact]
    public void RunSpecsNameExistingFilesRelativeToThemselves()
    {
        foreach (var (name, net, lambda) in new[] { ("dit-demo", "dit", (double?)null), ("dydit-demo-0.7", "dydit", 0.7), ("dydit-demo-0.5", "dydit", 0.5) })
        {
            string spec = demo.P($"runs/{name}.json");
            var r = JsonDocument.Parse(File.ReadAllText(spec)).RootElement;
            string Resolve(string key) => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(spec)!, r.GetProperty(key).GetString()!));
            Assert.Equal(name, r.GetProperty("name").GetString());
            Assert.Equal(net, r.GetProperty("net").GetString());
            if (lambda is double l) Assert.Equal(l, r.GetProperty("lambda").GetDouble());
            else Assert.False(r.TryGetProperty("lambda", out _));
            Assert.True(File.Exists(Resolve("model")) && File.Exists(Resolve("checkpoint")) && File.Exists(Resolve("inception")) && File.Exists(Resolve("reference")));
            Assert.True(Directory.Exists(Resolve("vae")));
            Assert.Equal(Path.Combine(demo.Dir, "out", name), Resolve("output"));
            Assert.Equal(40, r.GetProperty("num_samples").GetInt32());
            Assert.Equal(10, r.GetProperty("steps").GetInt32());
            Assert.Equal(0, r.GetProperty("seed").GetInt64());
            Assert.Equal(1.5, r.GetProperty("cfg_scale").GetDouble());
            Assert.Equal("ddpm", r.GetProperty("sampler").GetString());
            Assert.Equal("uniform", r.GetProperty("labels").GetString());
            Assert.Equal(40, r.GetProperty("shard_size").GetInt32());
            Assert.Equal(25, r.GetProperty("batch_size").GetInt32());
            Assert.True(r.GetProperty("demo").GetBoolean());
        }
    }

    [Fact]
    public void NumpyReadsTheReferenceBatch()
    {
        if (!PythonPeer.Available()) return;
        var stdout = PythonPeer.Run("""
            import sys, numpy as np
            with np.load(sys.argv[1]) as f:
                a, l = f['arr_0'], f['labels']
                print(a.dtype, a.shape, l.dtype, l.shape, int(a.min()), int(a.max()))
            """, [demo.P("reference/demo-ref.npz")]);
        Assert.StartsWith($"uint8 ({DemoFolder.ReferenceSamples}, 64, 64, 3) int64 ({DemoFolder.ReferenceSamples},)", stdout.Trim());
    }

    // ---- determinism, refusal, options ----

    [Fact]
    public void SameSeedGivesIdenticalFilesAndAnotherSeedDifferentOnes()
    {
        string same = Path.Combine(demo.Root, "same"), other = Path.Combine(demo.Root, "other");
        DemoAssets.Create(same, new DemoOptions(Seed: 0, NumSamples: 40, Steps: 10, ReferenceSamples: DemoFolder.ReferenceSamples));
        DemoAssets.Create(other, new DemoOptions(Seed: 1, NumSamples: 40, Steps: 10, ReferenceSamples: DemoFolder.ReferenceSamples));
        var expected = Hashes(demo.Dir);
        Assert.Equal(expected, Hashes(same));
        var different = Hashes(other);
        foreach (var f in ExpectedFiles.Where(f => !f.StartsWith("runs/", StringComparison.Ordinal) && f != "models/vae-demo/config.json"))
            Assert.True(expected[f] != different[f], $"{f} does not depend on the seed");
        Directory.Delete(same, recursive: true);
        Directory.Delete(other, recursive: true);
    }

    [Fact]
    public void RefusesAFolderThatIsNotEmptyUnlessForced()
    {
        string dir = Path.Combine(demo.Root, "busy");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");
        var e = Assert.Throws<IOException>(() => DemoAssets.Create(dir, new DemoOptions(ReferenceSamples: 2)));
        Assert.Contains("--force", e.Message);
        Assert.Single(Directory.EnumerateFileSystemEntries(dir));
        var files = DemoAssets.Create(dir, new DemoOptions(ReferenceSamples: 2, Force: true));
        Assert.Equal(ExpectedFiles.Length, files.Count);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(dir, "keep.txt")));
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData(-1, 500, 25, 500)]
    [InlineData(0, 0, 25, 500)]
    [InlineData(0, 500, 1, 500)]
    [InlineData(0, 500, 25, 0)]
    public void BadOptionsAreRefusedBeforeAnythingIsWritten(long seed, int samples, int steps, int reference)
    {
        string dir = Path.Combine(demo.Root, "bad");
        Assert.Throws<ArgumentException>(() => DemoAssets.Create(dir, new DemoOptions(seed, samples, steps, reference)));
        Assert.False(Directory.Exists(dir));
    }
}
