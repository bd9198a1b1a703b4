using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Networks.Vae;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>dydit-eval sample</c> end to end with the fixture DiT (<c>dit/dit_tiny</c>) and VAE (<c>vae/vae_tiny</c>). Latents are
/// checked against the 10-step traces of <c>fixtures/diffusion</c> with the README's tolerance (max abs error ≤ 1e-5 · max abs
/// reference).
/// </summary>
public sealed class SampleTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-sample-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static readonly string[] Model = ["--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt")];

    private string Out(string name) => Path.Combine(_dir.FullName, name);

    private static long[] Int64(StoredTensor t) => MemoryMarshal.Cast<byte, long>(t.ReadAllBytes()).ToArray();

    private CliProcess.Result Sample(params string[] args)
    {
        var r = CliProcess.Run(["sample", .. Model, "--threads", "2", .. args]);
        output.WriteLine(r.Stderr);
        return r;
    }

    private void AssertNear(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float maxRef = 0, maxErr = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
            maxErr = Math.Max(maxErr, Math.Abs(expected[i] - actual[i]));
        }
        output.WriteLine($"latents: max abs err {maxErr:E2} = {maxErr / maxRef:E2} of max abs ref {maxRef:F1}");
        Assert.True(maxErr <= 1e-5f * maxRef, $"max abs err {maxErr} > 1e-5 · {maxRef}");
    }

    // the trace recipes of diffusion.json, as command lines: sample_ddp.py draws the labels, sample.py gives them
    public static TheoryData<string, string[]> Traces() => new()
    {
        { "trace_cfg1.5_N10.npz", ["--seed", "5", "--cfg-scale", "1.5", "--num-samples", "3"] },
        { "trace_nocfg_N10.npz", ["--seed", "9", "--cfg-scale", "1", "--num-samples", "2"] },
        { "trace_cfg4_N10.npz", ["--seed", "0", "--cfg-scale", "4", "--num-samples", "3", "--labels", "3,7,1"] },
        { "trace_ddim_cfg4_N10.npz", ["--seed", "3", "--cfg-scale", "4", "--num-samples", "2", "--labels", "2, 9", "--sampler", "ddim"] },
    };

    [Theory]
    [MemberData(nameof(Traces))]
    public void TorchCpuLatentsFromTheSeedAloneMatchTheTrace(string trace, string[] recipe)
    {
        var path = Out("latents.npz");
        var r = Sample([.. recipe, "--steps", "10", "--rng", "torch-cpu", "--latents", "-o", path]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(Fixtures.Path("diffusion", trace));
        using var got = NpzArchive.Open(path);
        var samples = expected["samples"];
        Assert.Equal(samples.Shape, got["latents"].Shape);
        Assert.Equal(DType.Float32, got["latents"].DType);
        Assert.Equal(DType.Int64, got["labels"].DType);
        Assert.Equal(Int64(expected["y"]).Take((int)samples.Shape[0]), Int64(got["labels"]));
        AssertNear(samples.ToFloat32(), got["latents"].ToFloat32());
        Assert.Single(_dir.GetFiles()); // no temporary file left next to it
    }

    [Fact]
    public void ReplayedNoiseReproducesTheTrace()
    {
        var trace = Fixtures.Path("diffusion", "trace_cfg4_N10.npz");
        var path = Out("replayed.npz");
        // two batches over the three recorded samples; labels come from the file's y
        var r = Sample("--noise", trace, "--cfg-scale", "4", "--steps", "10", "--num-samples", "3", "--batch-size", "2", "--latents", "-o", path);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(trace);
        using var got = NpzArchive.Open(path);
        Assert.Equal(new long[] { 3, 7, 1 }, Int64(got["labels"]));
        AssertNear(expected["samples"].ToFloat32(), got["latents"].ToFloat32());
    }

    [Fact]
    public void ImagesAreAnAdmBatchIndependentOfBatchSize()
    {
        string[] common = ["--vae", Fixtures.Path("vae", "vae_tiny"), "--num-samples", "5", "--seed", "11", "--steps", "10", "--cfg-scale", "2"];
        var small = Out("b2.npz");
        var whole = Out("b5.npz");
        var r = Sample([.. common, "--batch-size", "2", "-o", small]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("samples/s", r.Stderr);
        r = Sample([.. common, "--batch-size", "5", "-o", whole]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        var latentsPath = Out("latents.npz");
        r = Sample([.. common, "--batch-size", "3", "--latents", "-o", latentsPath]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");

        using var a = NpzArchive.Open(small);
        using var b = NpzArchive.Open(whole);
        using var l = NpzArchive.Open(latentsPath);
        Assert.Equal(["arr_0", "labels"], a.Arrays.Select(x => x.Name));
        Assert.Equal(DType.UInt8, a["arr_0"].DType);
        Assert.Equal([5L, 64, 64, 3], a["arr_0"].Shape);
        Assert.Equal(DType.Int64, a["labels"].DType);
        Assert.Equal([5L], a["labels"].Shape);
        var labels = Int64(a["labels"]);
        Assert.All(labels, y => Assert.InRange(y, 0, 9));
        // per-sample noise: the same bytes whatever the batching
        Assert.Equal(a["arr_0"].ReadAllBytes(), b["arr_0"].ReadAllBytes());
        Assert.Equal(labels, Int64(b["labels"]));
        Assert.Equal(labels, Int64(l["labels"]));
        // and the images are the decoded latents (decode(z / 0.18215), sample_ddp.py's uint8 conversion), one sample per
        // call: the VAE's convolutions are not batch-invariant either
        using var cpu = Backends.Create("cpu", 2);
        using var vae = VaeDecoder.Load(Fixtures.Path("vae", "vae_tiny"), cpu);
        var z = l["latents"].ToFloat32();
        for (int i = 0; i < z.Length; i++) z[i] /= VaeDecoder.LatentScale;
        var expected = new List<byte>();
        for (int k = 0; k < 5; k++)
        {
            using var input = cpu.FromHost(z.AsSpan(k * 256, 256), 1, 4, 8, 8);
            using var images = vae.Decode(input);
            expected.AddRange(VaeDecoder.ToUint8Hwc(images.ToArray(), 1, 3, 64, 64));
        }
        Assert.Equal(expected, a["arr_0"].ReadAllBytes());

        // ADM's evaluator reads the batch with numpy: Debian's numpy must see the same arrays.
        if (PythonPeer.Available())
        {
            var seen = PythonPeer.Run("""
                import sys, hashlib, numpy as np
                d = np.load(sys.argv[1])
                x, y = d["arr_0"], d["labels"]
                print(x.dtype, x.shape, y.dtype, y.shape, hashlib.sha256(x.tobytes()).hexdigest(), ",".join(map(str, y)))
                """, [small]).Trim();
            string sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(a["arr_0"].ReadAllBytes()));
            Assert.Equal($"uint8 (5, 64, 64, 3) int64 (5,) {sha} {string.Join(",", labels)}", seen);
        }
    }

    [Fact]
    public void PresetsAndNetworkKindsAreCheckedAgainstTheCheckpoint()
    {
        // Every shipped preset parses and is consistent (latent = image / 8).
        var names = Workers.Sampling.SamplingPreset.Names;
        Assert.Equal(["dit-xl2-256", "dydit-xl2-256", "sparsedit-xl2-256", "sparsedit-xl2-512"], names);
        foreach (var name in names)
        {
            var p = Workers.Sampling.SamplingPreset.Find(name)!;
            Assert.Equal(p.ImageSize, 8 * p.LatentSize);
            Assert.Equal((1.5f, 250, 1000), (p.CfgScale, p.Steps, p.NumClasses));
        }
        string o = Out("x.npz");
        // The preset resolves to DiT-XL/2: the tiny checkpoint then fails strict loading, naming a key and both shapes.
        var r = CliProcess.Run("sample", "--model", "dit-xl2-256", "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"), "--latents",
            "--num-samples", "1", "-o", o);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("expected [1152, 4, 2, 2]", r.Stderr); // XL/2 hidden size
        // A DiT file forced to DyDiT, and a DyDiT file forced to DiT: named before any compute.
        r = CliProcess.Run("sample", "--model", Fixtures.Path("dit", "dit_tiny.json"), "--net", "dydit", "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"),
            "--latents", "--num-samples", "1", "-o", o);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no DyDiT router keys", r.Stderr);
        r = CliProcess.Run("sample", "--model", Fixtures.Path("dydit", "dydit_tiny.json"), "--net", "dit", "--checkpoint", Fixtures.Path("dydit", "dydit_tiny.pt"),
            "--latents", "--num-samples", "1", "-o", o);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("attn_rate.router", r.Stderr);
        Assert.False(File.Exists(o));
    }

    [Fact]
    public void BadArgumentsExitWithoutLeavingFiles()
    {
        var path = Out("never.npz");
        var trace = Fixtures.Path("diffusion", "trace_cfg4_N10.npz");
        (string[] Args, int Code, string Message)[] cases =
        [
            (["--num-samples", "2", "-o", path], 2, "--vae"),
            (["--num-samples", "2", "--latents", "--noise", trace, "--rng", "torch-cpu", "-o", path], 2, "--noise"),
            (["--num-samples", "2", "--latents", "--labels", "1", "-o", path], 2, "--labels"),
            (["--num-samples", "2", "--latents", "--labels", "1,10", "-o", path], 2, "10"),
            (["--num-samples", "2", "--latents", "--cfg-scale", "0.5", "-o", path], 2, "--cfg-scale"),
            (["--num-samples", "4", "--latents", "--noise", trace, "--cfg-scale", "4", "--steps", "10", "-o", path], 1, "records 3 samples"),
            (["--num-samples", "2", "--latents", "--noise", trace, "--cfg-scale", "1", "--steps", "10", "-o", path], 1, "step_noise"),
        ];
        foreach (var (args, code, message) in cases)
        {
            var r = Sample(args);
            Assert.True(r.ExitCode == code, $"{string.Join(' ', args)}: exit {r.ExitCode}, expected {code}: {r.Stderr}");
            Assert.Contains(message, r.Stderr);
        }
        Assert.Empty(_dir.GetFileSystemInfos());
    }
}
