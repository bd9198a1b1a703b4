using System.IO.Compression;
using System.Text.Json;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Metrics;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>dydit-eval features</c> and <c>evaluate</c> on image batches, end to end, with the fixture Inception weights
/// (fixtures/inception, produced by pytorch-fid's network and torch-fidelity's TF1 resize). Tolerances from the fixture
/// README: pool and spatial ≤ 1e-3, logits ≤ 3e-3 (absolute).
/// </summary>
public sealed class FeaturesTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-features-");
    private readonly string _weights;

    public FeaturesTests()
    {
        _weights = Path.Combine(_dir.FullName, "pt_inception_fixture.pth");
        using var input = new GZipStream(File.OpenRead(Fixtures.Path("inception", "pt_inception_fixture_legacy.pth.gz")), CompressionMode.Decompress);
        using var output = File.Create(_weights);
        input.CopyTo(output);
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private static NpzArchive Io() => NpzArchive.Open(Fixtures.Path("inception", "inception_io.npz"));

    private string Write(string name, params (string Array, DType DType, long[] Shape, byte[] Bytes)[] arrays) =>
        NpzFiles.Write(_dir.FullName, name, arrays);

    private static (string Array, DType DType, long[] Shape, byte[] Bytes) As(string name, StoredTensor t) => NpzFiles.As(name, t);

    private static (string, DType, long[], byte[]) Doubles(string name, double[] values, params long[] shape) =>
        (name, DType.Float64, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs((double)expected[i] - actual[i]));
        Assert.True(max <= tolerance, $"{what}: max |Δ| = {max} > {tolerance}");
    }

    [Theory]
    [InlineData("images_256", "adm", "adm256")]
    [InlineData("images_256", "pytorch-fid", "ptfid256")]
    [InlineData("images_299", "adm", "adm299")]
    [InlineData("images_299", "pytorch-fid", "ptfid299")]
    public void FeaturesMatchTheReferenceNetworkOnEveryPath(string images, string preprocess, string path)
    {
        string input;
        using (var io = Io()) input = Write("images.npz", As("arr_0", io[images]));
        string output = Path.Combine(_dir.FullName, "features.npz");
        // batch 3 over 4 images: a full and a partial batch
        var r = CliProcess.Run("features", "--images", input, "--inception", _weights, "-o", output, "--batch", "3", "--preprocess", preprocess);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var io2 = Io();
        using var f = NpzArchive.Open(output);
        Assert.Equal([4L, 2048], f["pool"].Shape);
        Assert.Equal([4L, 2023], f["spatial"].Shape);
        Assert.Equal([4L, 1008], f["logits"].Shape);
        AssertClose(io2[$"{path}_pool"].ToFloat32(), f["pool"].ToFloat32(), 1e-3, "pool");
        AssertClose(io2[$"{path}_spatial"].ToFloat32(), f["spatial"].ToFloat32(), 1e-3, "spatial");
        AssertClose(io2[$"{path}_logits_unbiased"].ToFloat32(), f["logits"].ToFloat32(), 3e-3, "logits");
        // the class probabilities ADM's Inception Score uses: softmax of the unbiased logits, ≤ 2e-4 (issue/README)
        AssertClose(io2[$"{path}_softmax_unbiased"].ToFloat32(), Softmax(f["logits"].ToFloat32(), 1008), 2e-4, "softmax");
    }

    // row-wise softmax in float64 (an independent rendering; ADM's float32 softmax differs by ~1e-7)
    private static float[] Softmax(float[] logits, int classes)
    {
        var p = new float[logits.Length];
        for (int r = 0; r < logits.Length / classes; r++)
        {
            var row = logits.AsSpan(r * classes, classes);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row) max = Math.Max(max, v);
            foreach (float v in row) sum += Math.Exp(v - max);
            for (int j = 0; j < classes; j++) p[r * classes + j] = (float)(Math.Exp(row[j] - max) / sum);
        }
        return p;
    }

    [Fact]
    public void ForwardRunsTheNetworkOnRecordedInputs()
    {
        string input;
        using (var io = Io())
        {
            // ADM's network input for images_299: (x − 128) / 128, no resize at 299.
            var x = io["images_299"].ToFloat32();
            for (int i = 0; i < x.Length; i++) x[i] = (x[i] - 128f) / 128f;
            input = Write("x.npz", ("x", DType.Float32, [4L, 299, 299, 3], System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()).ToArray()));
        }
        string output = Path.Combine(_dir.FullName, "out.npz");
        var r = CliProcess.Run("forward", "--net", "inception", "--checkpoint", _weights, "--inputs", input, "-o", output);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var io2 = Io();
        using var f = NpzArchive.Open(output);
        AssertClose(io2["adm299_pool"].ToFloat32(), f["pool"].ToFloat32(), 1e-3, "pool");
        AssertClose(io2["adm299_spatial"].ToFloat32(), f["spatial"].ToFloat32(), 1e-3, "spatial");
        AssertClose(io2["adm299_logits_unbiased"].ToFloat32(), f["logits"].ToFloat32(), 3e-3, "logits");
    }

    /// <summary>forward --net vae on the fixture VAE folder: decoded ≤ 3e-5, uint8_hwc within ±1 on ≤ 0.1 % (fixture README).</summary>
    [Fact]
    public void ForwardDecodesLatentsWithTheVae()
    {
        string input;
        using (var io = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz"))) input = Write("z.npz", As("z", io["z"]));
        string output = Path.Combine(_dir.FullName, "decoded.npz");
        var r = CliProcess.Run("forward", "--net", "vae", "--checkpoint", Fixtures.Path("vae", "vae_tiny"), "--inputs", input, "-o", output);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz"));
        using var f = NpzArchive.Open(output);
        Assert.Equal(expected["decoded"].Shape, f["decoded"].Shape);
        AssertClose(expected["decoded"].ToFloat32(), f["decoded"].ToFloat32(), 3e-5, "decoded");
        var want = expected["uint8_hwc"].ReadAllBytes();
        var got = f["uint8_hwc"].ReadAllBytes();
        Assert.Equal(want.Length, got.Length);
        int off = 0;
        for (int i = 0; i < want.Length; i++)
        {
            Assert.True(Math.Abs(want[i] - got[i]) <= 1, $"uint8_hwc[{i}]: {got[i]} vs {want[i]}");
            if (want[i] != got[i]) off++;
        }
        Assert.True(off <= want.Length / 1000, $"{off} of {want.Length} uint8 values differ");
    }

    [Fact]
    public void ImagesOfTheWrongShapeOrDtypeExitOneNamingThem()
    {
        var wrong = Write("gray.npz", ("arr_0", DType.UInt8, [2L, 8, 8], new byte[128]));
        var r = CliProcess.Run("features", "--images", wrong, "--inception", _weights, "-o", Path.Combine(_dir.FullName, "x.npz"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("gray.npz", r.Stderr);
        Assert.Contains("uint8 [2,8,8]", r.Stderr);

        var floats = new float[2 * 4 * 4 * 3];
        floats[5] = 300f;
        var bad = Write("floats.npz", ("arr_0", DType.Float32, [2L, 4, 4, 3], System.Runtime.InteropServices.MemoryMarshal.AsBytes(floats.AsSpan()).ToArray()));
        r = CliProcess.Run("features", "--images", bad, "--inception", _weights, "-o", Path.Combine(_dir.FullName, "y.npz"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("300", r.Stderr);
        Assert.Contains("0..255", r.Stderr);
        Assert.False(File.Exists(Path.Combine(_dir.FullName, "y.npz")));
    }

    /// <summary>
    /// An ADM-style reference batch (images + stored statistics) against a sample image batch. Expected values are
    /// computed from the fixture's reference-network features: FID/sFID from the stored statistics (not from the
    /// reference images), IS from the sample logits, P/R from both image sets' pool features.
    /// </summary>
    [Fact]
    public void EvaluateOnImageBatchesUsesStoredStatisticsAndCachesReferenceFeatures()
    {
        using var cpu = Backends.Create("cpu");
        string reference, sample;
        FeatureStatistics Stats(float[] rows, int dim) => StatisticsAccumulator.Compute(rows, dim);
        float[] admRefPool, adm256Pool, adm256Spatial, adm256Logits, storedPool, storedSpatial;
        using (var io = Io())
        {
            admRefPool = io["adm299_pool"].ToFloat32();
            adm256Pool = io["adm256_pool"].ToFloat32();
            adm256Spatial = io["adm256_spatial"].ToFloat32();
            adm256Logits = io["adm256_logits_unbiased"].ToFloat32();
            // Stored statistics deliberately from another feature set, so that using them is visible.
            storedPool = io["ptfid299_pool"].ToFloat32();
            storedSpatial = io["ptfid299_spatial"].ToFloat32();
            var sp = Stats(storedPool, 2048);
            var ss = Stats(storedSpatial, 2023);
            reference = Write("VIRTUAL_test_ref.npz", As("arr_0", io["images_299"]),
                Doubles("mu", sp.Mu, 2048), Doubles("sigma", sp.Sigma, 2048, 2048),
                Doubles("mu_s", ss.Mu, 2023), Doubles("sigma_s", ss.Sigma, 2023, 2023));
            sample = Write("samples.npz", As("arr_0", io["images_256"]));
        }
        double fid = FrechetDistance.Compute(Stats(adm256Pool, 2048), Stats(storedPool, 2048)).Distance;
        double sfid = FrechetDistance.Compute(Stats(adm256Spatial, 2023), Stats(storedSpatial, 2023)).Distance;
        double inceptionScore = InceptionScore.FromLogits(adm256Logits, 1008).Score;
        var pr = PrecisionRecall.Compute(admRefPool, adm256Pool, 2048, cpu);

        var cache = Path.Combine(_dir.FullName, "cache");
        JsonElement RunEvaluate(out string stderr)
        {
            var json = Path.Combine(_dir.FullName, $"m-{Guid.NewGuid():N}.json");
            var r = CliProcess.RunWith([("DYDIT_CACHE", cache)], "evaluate", "--ref", reference, "--sample", sample,
                "--inception", _weights, "--json", json);
            Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
            stderr = r.Stderr;
            return JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone();
        }
        var first = RunEvaluate(out var err1);
        // Features within 1e-3 of the reference network's: the metrics follow to ~1e-3 relative on 4 images.
        Assert.Equal(fid, first.GetProperty("fid").GetDouble(), fid * 1e-2);
        Assert.Equal(sfid, first.GetProperty("sfid").GetDouble(), sfid * 1e-2);
        Assert.Equal(inceptionScore, first.GetProperty("inception_score").GetDouble(), inceptionScore * 1e-3);
        Assert.Equal(pr.Precision, first.GetProperty("precision").GetDouble());
        Assert.Equal(pr.Recall, first.GetProperty("recall").GetDouble());
        Assert.Equal(4, first.GetProperty("n_ref").GetInt32());
        Assert.Equal(4, first.GetProperty("n_sample").GetInt32());
        Assert.DoesNotContain("using cached reference features", err1);
        Assert.Single(Directory.GetFiles(Path.Combine(cache, "features"), "*.npz"));

        var second = RunEvaluate(out var err2);
        Assert.Contains("using cached reference features", err2);
        foreach (var key in new[] { "fid", "sfid", "inception_score", "precision", "recall" })
            Assert.Equal(first.GetProperty(key).GetDouble(), second.GetProperty(key).GetDouble());
    }

    [Fact]
    public void ADamagedReferenceFeatureCacheEntryIsRecomputedWithAWarningNeverUsed()
    {
        // Reference images go through the network (and the cache); the sample side is a features file, to keep it quick.
        string reference, sample;
        using (var io = Io())
        {
            reference = Write("ref_images.npz", As("arr_0", io["images_299"]));
            sample = Write("sample_features.npz", As("pool", io["adm256_pool"]), As("spatial", io["adm256_spatial"]), As("logits", io["adm256_logits_unbiased"]));
        }
        var cache = Path.Combine(_dir.FullName, "cache");
        (JsonElement Metrics, string Stderr) Evaluate()
        {
            var json = Path.Combine(_dir.FullName, $"m-{Guid.NewGuid():N}.json");
            var r = CliProcess.RunWith([("DYDIT_CACHE", cache)], "evaluate", "--ref", reference, "--sample", sample, "--inception", _weights, "--json", json);
            Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
            return (JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone(), r.Stderr);
        }
        string[] keys = ["fid", "sfid", "precision", "recall"];
        var (clean, _) = Evaluate();
        var entry = Assert.Single(Directory.GetFiles(Path.Combine(cache, "features"), "*.npz"));

        // A flipped bit deep in the pool array: still a valid npz, which only the checksum can tell from the real one.
        var bytes = File.ReadAllBytes(entry);
        bytes[bytes.Length / 3] ^= 0x40;
        File.WriteAllBytes(entry, bytes);
        var (again, err) = Evaluate();
        Assert.Contains($"warning: reference-feature cache entry {entry}: ", err);
        Assert.DoesNotContain("using cached reference features", err);
        foreach (var key in keys) Assert.Equal(clean.GetProperty(key).GetDouble(), again.GetProperty(key).GetDouble());

        // The recomputed entry replaced the damaged one and is used again; a truncated one is caught the same way
        // (both kinds, and garbage, in FeatureCacheTests).
        var (last, lastErr) = Evaluate();
        Assert.Contains($"using cached reference features {entry}", lastErr);
        Assert.DoesNotContain("warning: reference-feature cache", lastErr);
        foreach (var key in keys) Assert.Equal(clean.GetProperty(key).GetDouble(), last.GetProperty(key).GetDouble());
    }

    [Fact]
    public void EvaluateOnImagesWithoutInceptionSaysWhatIsNeeded()
    {
        string sample;
        using (var io = Io()) sample = Write("samples.npz", As("arr_0", io["images_256"]));
        var r = CliProcess.Run("evaluate", "--ref", sample, "--sample", sample);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--inception", r.Stderr);
        Assert.Contains("samples.npz", r.Stderr);
    }
}
