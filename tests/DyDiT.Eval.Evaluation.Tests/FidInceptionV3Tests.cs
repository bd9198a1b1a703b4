using System.IO.Compression;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Evaluation.Inception;
using DyDiT.Eval.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>
/// The fixture weights (random, low-entropy, saved by torch 1.13 in both containers, shipped gzip'd) decompressed
/// once per test class into temporary files.
/// </summary>
public sealed class InceptionFixtureFiles : IDisposable
{
    public InceptionFixtureFiles()
    {
        Legacy = Gunzip(Fixtures.Path("inception", "pt_inception_fixture_legacy.pth.gz"));
        Zip = Gunzip(Fixtures.Path("inception", "pt_inception_fixture_zip.pth.gz"));
    }

    public string Legacy { get; }

    public string Zip { get; }

    private static string Gunzip(string gz)
    {
        string target = Path.Combine(Path.GetTempPath(), $"dydit-{Path.GetFileNameWithoutExtension(gz)}-{Guid.NewGuid():N}");
        using var input = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress);
        using var output = File.Create(target);
        input.CopyTo(output);
        return target;
    }

    public void Dispose()
    {
        File.Delete(Legacy);
        File.Delete(Zip);
    }
}

/// <summary>
/// pytorch-fid's FID Inception v3 run by torch 1.13 on CPU (inception/inception_io.npz) against ours. Only the 299×299
/// paths are run: their preprocessing is a per-pixel affine map (the TF1 resize is the identity at 299, checked
/// bitwise by the fixture generator), while the 256 paths need the resize, which is tested on its own. On every backend
/// with the same tolerances; off the CPU backend on the first fixture image only (one image per preprocessing path is
/// enough there, and ILGPU's CPU accelerator runs the convolutions with its naive reference kernels).
/// </summary>
public sealed class FidInceptionV3Tests(InceptionFixtureFiles files, BackendPool backends, ITestOutputHelper output)
    : IClassFixture<InceptionFixtureFiles>, IClassFixture<BackendPool>
{
    // fixtures/README.md, inception/: "Suggested tolerance for a float32 re-implementation (any summation order):
    // |Δ| ≤ 1e-3 for pool and spatial, ≤ 3e-3 for logits". Float32 vs float64 runs of the same network differ by at
    // most 1.1e-4 (pool), 3.0e-4 (logits) on these inputs (manifest float32_vs_float64).
    private const double PoolTolerance = 1e-3;
    private const double SpatialTolerance = 1e-3;
    private const double LogitsTolerance = 3e-3;

    private const int Side = FidInceptionV3.InputSize;

    private const int FixtureImages = 4;

    /// <summary>How many of the fixture images a device runs: all on cpu, the first one elsewhere.</summary>
    private static int ImagesOn(string device) => device == "cpu" ? FixtureImages : 1;

    /// <summary>The first <paramref name="images"/> rows of a fixture array whose rows are images.</summary>
    private static float[] FirstImages(StoredTensor array, int images)
    {
        var all = array.ToFloat32();
        Assert.Equal(FixtureImages, (int)array.Shape[0]);
        return all.AsSpan(0, all.Length / FixtureImages * images).ToArray();
    }

    /// <summary>
    /// The first <paramref name="images"/> of images_299 → the network input of path <paramref name="path"/>, float32
    /// as the fixture generator computed it.
    /// </summary>
    private static float[] Preprocess(NpzArchive io, string path, int images)
    {
        var all = io["images_299"];
        Assert.Equal([FixtureImages, Side, Side, 3], all.Shape);
        var x = FirstImages(all, images); // uint8 widened exactly
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = path switch
            {
                // ADM's TF graph: Sub 128, Mul 1/128 (bit-identical to dividing by 128)
                "adm299" => (x[i] - 128f) / 128f,
                // pytorch-fid: x / 255 (ToTensor-style), identity resize, then 2·x − 1
                "ptfid299" => 2f * (x[i] / 255f) - 1f,
                _ => throw new ArgumentException(path),
            };
        }
        return x;
    }

    private double MaxAbsDiff(string what, float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0, refMax = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            max = Math.Max(max, Math.Abs((double)expected[i] - actual[i]));
            refMax = Math.Max(refMax, Math.Abs(expected[i]));
        }
        output.WriteLine($"{what}: max |Δ| = {max:E3} (max |ref| = {refMax:F3})");
        return max;
    }

    public static IEnumerable<object[]> Cases => DeviceCases.Cross(
        ["zip", "adm299"],
        ["zip", "ptfid299"],
        ["legacy", "adm299"],
        ["legacy", "ptfid299"]);

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesPytorchFid(string device, string format, string path)
    {
        int n = ImagesOn(device);
        using var io = NpzArchive.Open(Fixtures.Path("inception", "inception_io.npz"));
        using var net = FidInceptionV3.Load(format == "zip" ? files.Zip : files.Legacy, backends[device]);
        var features = net.Run(Preprocess(io, path, n), n);

        Assert.Equal(n, features.Count);
        Assert.Equal(n * FidInceptionV3.PoolFeatures, features.Pool.Length);
        Assert.Equal(n * FidInceptionV3.SpatialFeatures, features.Spatial.Length);
        Assert.Equal(n * FidInceptionV3.Classes, features.Logits.Length);
        double pool = MaxAbsDiff($"{format} {path} pool", FirstImages(io[$"{path}_pool"], n), features.Pool);
        double spatial = MaxAbsDiff($"{format} {path} spatial", FirstImages(io[$"{path}_spatial"], n), features.Spatial);
        double logits = MaxAbsDiff($"{format} {path} logits", FirstImages(io[$"{path}_logits_unbiased"], n), features.Logits);
        Assert.True(pool <= PoolTolerance, $"pool differs by {pool}");
        Assert.True(spatial <= SpatialTolerance, $"spatial differs by {spatial}");
        Assert.True(logits <= LogitsTolerance, $"logits (unbiased) differ by {logits}");

        // The logits are the unbiased ones: the biased fixture logits differ from ours by fc.bias (up to 0.5 here).
        double biased = MaxAbsDiff($"{format} {path} logits vs biased", FirstImages(io[$"{path}_logits"], n), features.Logits);
        Assert.True(biased > 10 * LogitsTolerance, "logits look biased");
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void RejectsWrongInputShape(string device)
    {
        var backend = backends[device];
        using var net = FidInceptionV3.Load(files.Zip, backend);
        using var wrong = backend.Zeros(1, 256, 256, 3);
        Assert.Throws<ArgumentException>(() => net.Forward(wrong));
    }

    // ---- strict loading: edits of the fixture state dict, held in memory ----

    private sealed class ArrayTensor(string name, long[] shape, float[] values) : StoredTensor(name, shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination)
        {
            var bytes = new byte[values.Length * sizeof(float)];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            destination.Write(bytes);
        }
    }

    private TensorFileException LoadEdited(string device, Action<Dictionary<string, StoredTensor>> edit)
    {
        using var ckpt = TorchCheckpoint.Open(files.Zip);
        var dict = ckpt.StateDict().ToDictionary(kv => kv.Key, kv => (StoredTensor)kv.Value, StringComparer.Ordinal);
        edit(dict);
        var e = Assert.Throws<TensorFileException>(() => FidInceptionV3.FromStateDict(dict, "edited.pth", backends[device]).Dispose());
        output.WriteLine(e.Message);
        Assert.Equal("edited.pth", e.FilePath);
        return e;
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MissingKeyIsNamed(string device)
    {
        var e = LoadEdited(device, d => d.Remove("Mixed_6d.branch1x1.bn.running_var"));
        Assert.Contains("'Mixed_6d.branch1x1.bn.running_var'", e.Message);
        Assert.Contains("[192]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void RenamedKeyIsNamed(string device)
    {
        var e = LoadEdited(device, d =>
        {
            d["Mixed_5b.branch_pool.conv.weights"] = d["Mixed_5b.branch_pool.conv.weight"];
            d.Remove("Mixed_5b.branch_pool.conv.weight");
        });
        Assert.Contains("'Mixed_5b.branch_pool.conv.weight'", e.Message); // reported missing first
        Assert.Contains("[32, 192, 1, 1]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MisshapenKeyNamesBothShapes(string device)
    {
        var e = LoadEdited(device, d => d["Mixed_5b.branch5x5_2.conv.weight"] =
            new ArrayTensor("Mixed_5b.branch5x5_2.conv.weight", [64, 48, 3, 3], new float[64 * 48 * 9]));
        Assert.Contains("'Mixed_5b.branch5x5_2.conv.weight'", e.Message);
        Assert.Contains("[64, 48, 3, 3]", e.Message);
        Assert.Contains("[64, 48, 5, 5]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void UnexpectedKeyIsNamedButBatchCountersAreIgnored(string device)
    {
        var e = LoadEdited(device, d =>
        {
            d["Mixed_7c.branch1x1.bn.num_batches_tracked"] = new ArrayTensor("Mixed_7c.branch1x1.bn.num_batches_tracked", [], [0f]);
            d["AuxLogits.fc.weight"] = new ArrayTensor("AuxLogits.fc.weight", [2, 3], new float[6]);
        });
        Assert.Contains("unexpected state dict key 'AuxLogits.fc.weight'", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.DoesNotContain("num_batches_tracked", e.Message);
    }
}
