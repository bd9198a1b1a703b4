using System.IO.Compression;
using System.Security.Cryptography;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// Every network and a sample batch give the same bytes for --threads 1, 2, 3 and 8 (DESIGN.md: a sample is a function
/// of run spec, index and numerics identity, not of the thread count). Each network's first output is also checked
/// against the official code's fixture elsewhere (ForwardDitTests, FeaturesTests, SampleTests); here only equality.
/// </summary>
public sealed class ThreadCountTests : IDisposable
{
    private static readonly string[] ThreadCounts = ["1", "2", "3", "8"];
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-threads-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>Runs the verb once per thread count; asserts every array of every output has one sha256.</summary>
    private void SameBytesForAllThreadCounts(string what, string[] args)
    {
        string? first = null;
        foreach (var threads in ThreadCounts)
        {
            string output = Path.Combine(_dir.FullName, $"out-{threads}.npz");
            var r = CliProcess.Run([.. args, "--threads", threads, "-o", output]);
            Assert.True(r.ExitCode == 0, $"{what} --threads {threads}: exit {r.ExitCode}: {r.Stderr}");
            using var f = NpzArchive.Open(output);
            string digest = string.Join(", ", f.Arrays.Select(a => a.Name + "=" + Convert.ToHexString(SHA256.HashData(a.ReadAllBytes()))));
            Assert.Contains("=", digest);
            if (first == null) first = digest;
            else Assert.True(first == digest, $"{what}: --threads {threads} gives {digest}, --threads 1 gave {first}");
        }
    }

    private string Inputs(string fixtureDir, string io, string prefix, bool cfg)
    {
        using var f = NpzArchive.Open(Fixtures.Path(fixtureDir, io));
        var arrays = new List<(string, DType, long[], byte[])>
        {
            NpzFiles.As("x", f[prefix + "x"]), NpzFiles.As("t", f[prefix + "t"]), NpzFiles.As("y", f[prefix + "y"]),
        };
        if (cfg) arrays.Add(("cfg_scale", DType.Float64, [], BitConverter.GetBytes(1.5)));
        return NpzFiles.Write(_dir.FullName, "in.npz", [.. arrays]);
    }

    [Theory]
    [InlineData("dit", "dit_tiny")]
    [InlineData("dydit", "dydit_tiny")]
    [InlineData("sparsedit", "sparsedit_tiny")]
    public void Transformers(string net, string model)
    {
        string input = Inputs(net, model + "_io.npz", "cfg_", cfg: true);
        SameBytesForAllThreadCounts($"forward --net {net}",
            ["forward", "--net", net, "--config", Fixtures.Path(net, model + ".json"), "--checkpoint", Fixtures.Path(net, model + ".pt"),
             "--inputs", input]);
    }

    [Fact]
    public void VaeDecoder()
    {
        string input;
        using (var io = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz")))
            input = NpzFiles.Write(_dir.FullName, "z.npz", NpzFiles.As("z", io["z"]));
        SameBytesForAllThreadCounts("forward --net vae",
            ["forward", "--net", "vae", "--checkpoint", Fixtures.Path("vae", "vae_tiny"), "--inputs", input]);
    }

    [Fact]
    public void FidInception()
    {
        string weights = Path.Combine(_dir.FullName, "inception.pth");
        using (var gz = new GZipStream(File.OpenRead(Fixtures.Path("inception", "pt_inception_fixture_legacy.pth.gz")), CompressionMode.Decompress))
        using (var w = File.Create(weights)) gz.CopyTo(w);
        string input;
        using (var io = NpzArchive.Open(Fixtures.Path("inception", "inception_io.npz")))
        {
            // two of the fixture's 299×299 images as network input, (x − 128) / 128
            var x = io["images_299"].ToFloat32().AsSpan(0, 2 * 299 * 299 * 3).ToArray();
            for (int i = 0; i < x.Length; i++) x[i] = (x[i] - 128f) / 128f;
            input = NpzFiles.Write(_dir.FullName, "x.npz",
                ("x", DType.Float32, [2L, 299, 299, 3], System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()).ToArray()));
        }
        SameBytesForAllThreadCounts("forward --net inception", ["forward", "--net", "inception", "--checkpoint", weights, "--inputs", input]);
    }

    [Fact]
    public void SampleBatch()
    {
        SameBytesForAllThreadCounts("sample",
            ["sample", "--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"),
             "--vae", Fixtures.Path("vae", "vae_tiny"), "--num-samples", "3", "--batch-size", "3", "--seed", "5", "--steps", "6", "--cfg-scale", "2"]);
    }
}
