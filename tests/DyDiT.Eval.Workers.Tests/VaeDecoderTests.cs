using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Networks.Vae;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Workers.Tests;

/// <summary>
/// The VAE decoder against <c>fixtures/vae</c>: diffusers' AutoencoderKL (v0.25.1) with the sd-vae-ft-ema block types
/// at a tiny width, random weights, decoded on CPU in float32. Tolerances are the fixtures README's.
/// </summary>
public sealed class VaeDecoderTests : IClassFixture<BackendPool>
{
    private static readonly string TinyFolder = Fixtures.Path("vae", "vae_tiny");
    private static readonly string LegacyFolder = Fixtures.Path("vae", "vae_tiny_legacy_keys");

    private readonly BackendPool _pool;
    private readonly ITestOutputHelper _log;

    public VaeDecoderTests(BackendPool pool, ITestOutputHelper log) => (_pool, _log) = (pool, log);

    public static TheoryData<string, string> WeightFiles() => new()
    {
        { "vae_tiny", "diffusion_pytorch_model.safetensors" },
        { "vae_tiny", "diffusion_pytorch_model.bin" },
        { "vae_tiny_legacy_keys", "diffusion_pytorch_model.bin" }, // query/key/value/proj_attn
    };

    public static IEnumerable<object[]> WeightFilesOnEveryBackend() => DeviceCases.Over(WeightFiles());

    [Theory]
    [MemberData(nameof(WeightFilesOnEveryBackend))]
    public void DecodesLikeDiffusers(string device, string folder, string weightsFile)
    {
        var backend = _pool[device];
        using var io = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz"));
        var dir = Fixtures.Path("vae", folder);
        using var vae = VaeDecoder.Load(Path.Combine(dir, "config.json"), Path.Combine(dir, weightsFile), backend);

        var zDiv = io["z_div_scale"];
        using var latents = backend.FromHost(zDiv.ToFloat32(), Dims(zDiv));
        var seen = new Dictionary<string, float[]>();
        using var images = vae.Decode(latents, (name, nhwc) => seen[name] = ToNchw(nhwc));

        // Every stage the fixture recorded, at the intermediates tolerance.
        foreach (var array in io.Arrays.Where(a => a.Name.StartsWith("inter_", StringComparison.Ordinal)))
        {
            string stage = array.Name["inter_".Length..];
            Assert.True(seen.ContainsKey(stage), $"no stage '{stage}' observed");
            var expected = array.ToFloat32();
            AssertClose(expected, seen[stage], 1e-5 * Math.Max(1, MaxAbs(expected)), array.Name);
        }
        Assert.Equal(io.Arrays.Count(a => a.Name.StartsWith("inter_", StringComparison.Ordinal)), seen.Count);

        var decoded = io["decoded"];
        Assert.Equal(decoded.Shape.Select(d => (int)d), images.Shape.ToArray());
        var output = images.ToArray();
        AssertClose(decoded.ToFloat32(), output, 3e-5, "decoded");

        var u8 = io["uint8_hwc"].ReadAllBytes();
        var ours = VaeDecoder.ToUint8Hwc(output, 3, 3, 32, 32);
        int differing = 0;
        for (int i = 0; i < u8.Length; i++)
        {
            Assert.True(Math.Abs(u8[i] - ours[i]) <= 1, $"uint8 value {i}: expected {u8[i]}, got {ours[i]}");
            if (u8[i] != ours[i]) differing++;
        }
        _log.WriteLine($"uint8_hwc: {differing} of {u8.Length} values differ");
        Assert.True(differing <= u8.Length / 1000, $"{differing} of {u8.Length} uint8 values differ");
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void LoadsFoldersWithSafetensorsOrOnlyBin(string device)
    {
        var backend = _pool[device];
        using var io = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz"));
        var z = io["z"].ToFloat32();
        var zDiv = io["z_div_scale"].ToFloat32();
        for (int i = 0; i < z.Length; i++) Assert.Equal(zDiv[i], z[i] / VaeDecoder.LatentScale); // the caller's division, bit-exact

        using var vae = VaeDecoder.Load(TinyFolder, backend);
        Assert.Equal([8, 16, 16, 16], vae.Config.BlockOutChannels);
        Assert.Equal(8, vae.Config.UpsampleFactor);
        using var latents = backend.FromHost(zDiv, 3, 4, 4, 4);
        using var images = vae.Decode(latents);
        AssertClose(io["decoded"].ToFloat32(), images.ToArray(), 3e-5, "decoded");

        using var legacy = VaeDecoder.Load(LegacyFolder, backend); // only a .bin there, with the old attention names
        using var legacyImages = legacy.Decode(latents);
        Assert.Equal(images.ToArray(), legacyImages.ToArray());
    }

    [Fact]
    public void Uint8ConversionIsSampleDdpExactly()
    {
        using var io = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz"));
        // On torch's own float32 decode the conversion must reproduce torch's bytes exactly.
        Assert.Equal(io["uint8_hwc"].ReadAllBytes(), VaeDecoder.ToUint8Hwc(io["decoded"].ToFloat32(), 3, 3, 32, 32));

        // 127.5·x + 128 truncated: −1 → 0.5 → 0, 1 → 255.5 → 255, 0 → 128, clamps and NaN.
        float[] x = [-1f, 1f, 0f, -2f, 5f, float.NaN, 1f / 255f, -1f / 255f, float.PositiveInfinity, float.NegativeInfinity];
        byte[] expected = [0, 255, 128, 0, 255, 0, 128, 127, 255, 0];
        Assert.Equal(expected, VaeDecoder.ToUint8Hwc(x, 1, 1, 1, x.Length));

        // NCHW → NHWC: channel c of pixel p lands at p·C + c.
        float[] planes = [-1f, -1f, 0f, 0f, 1f, 1f]; // (1, 3, 1, 2)
        Assert.Equal(new byte[] { 0, 128, 255, 0, 128, 255 }, VaeDecoder.ToUint8Hwc(planes, 1, 3, 1, 2));
    }

    // ---- strict loading ----

    private VaeDecoder FromEdited(string device, Func<List<KeyValuePair<string, StoredTensor>>, List<KeyValuePair<string, StoredTensor>>> edit)
    {
        var weights = Path.Combine(TinyFolder, "diffusion_pytorch_model.safetensors");
        using var file = TensorFile.Open(weights);
        var stateDict = edit(file.Tensors.Select(t => KeyValuePair.Create(t.Name, t)).ToList());
        return VaeDecoder.FromStateDict(VaeConfig.Read(Path.Combine(TinyFolder, "config.json")), stateDict, "edited.safetensors", _pool[device]);
    }

    private static StoredTensor Tensor(List<KeyValuePair<string, StoredTensor>> sd, string key) => sd.Single(kv => kv.Key == key).Value;

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MissingKeyIsNamed(string device)
    {
        var e = Assert.Throws<TensorFileException>(() => FromEdited(device, sd => sd.Where(kv => kv.Key != "decoder.up_blocks.1.resnets.1.conv2.bias").ToList()));
        Assert.Equal("edited.safetensors", e.FilePath);
        Assert.Contains("'decoder.up_blocks.1.resnets.1.conv2.bias'", e.Message);
        Assert.Contains("[16]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MissingAttentionKeyNamesBothLayouts(string device)
    {
        var e = Assert.Throws<TensorFileException>(() => FromEdited(device, sd => sd.Where(kv => kv.Key != "decoder.mid_block.attentions.0.to_k.weight").ToList()));
        Assert.Contains("'decoder.mid_block.attentions.0.to_k.weight' or 'decoder.mid_block.attentions.0.key.weight'", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MisshapenKeyShowsBothShapes(string device)
    {
        var e = Assert.Throws<TensorFileException>(() => FromEdited(device, sd => sd
            .Select(kv => kv.Key == "decoder.conv_out.weight" ? KeyValuePair.Create(kv.Key, Tensor(sd, "decoder.conv_in.weight")) : kv).ToList()));
        Assert.Contains("'decoder.conv_out.weight'", e.Message);
        Assert.Contains("[16, 4, 3, 3]", e.Message);
        Assert.Contains("expected [3, 8, 3, 3]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void UnexpectedDecoderKeyIsAnErrorButTheEncoderIsIgnored(string device)
    {
        Assert.Contains(ListOf(TinyFolder), kv => kv.Key.StartsWith("encoder.", StringComparison.Ordinal)); // loads fine with them
        var e = Assert.Throws<TensorFileException>(() => FromEdited(device, sd =>
            [.. sd, KeyValuePair.Create("decoder.up_blocks.3.upsamplers.0.conv.bias", Tensor(sd, "decoder.conv_out.bias"))]));
        Assert.Contains("unexpected state dict key 'decoder.up_blocks.3.upsamplers.0.conv.bias' (shape [3])", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void BothAttentionLayoutsAtOnceIsAnError(string device)
    {
        var e = Assert.Throws<TensorFileException>(() => FromEdited(device, sd =>
            [.. sd, KeyValuePair.Create("decoder.mid_block.attentions.0.query.weight", Tensor(sd, "decoder.mid_block.attentions.0.to_q.weight"))]));
        Assert.Contains("'decoder.mid_block.attentions.0.to_q.weight'", e.Message);
        Assert.Contains("'decoder.mid_block.attentions.0.query.weight'", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MissingFolderOrWeights(string device)
    {
        var backend = _pool[device];
        Assert.Throws<DirectoryNotFoundException>(() => VaeDecoder.Load(Path.Combine(TinyFolder, "nope"), backend));
        Assert.Throws<FileNotFoundException>(() => VaeDecoder.Load(Path.Combine(TinyFolder, "config.json"), Path.Combine(TinyFolder, "nope.bin"), backend));
    }

    // ---- config ----

    [Fact]
    public void ReadsThePublishedConfigShape()
    {
        // The fields of stabilityai/sd-vae-ft-ema's config.json that matter here.
        const string json = """
            { "_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", "act_fn": "silu",
              "block_out_channels": [128, 256, 512, 512], "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
              "norm_num_groups": 32, "out_channels": 3, "sample_size": 256,
              "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
              "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"] }
            """;
        var c = VaeConfig.Parse(json, "config.json");
        Assert.Equal([128, 256, 512, 512], c.BlockOutChannels);
        Assert.Equal((4, 3, 2, 32, 8), (c.LatentChannels, c.OutChannels, c.LayersPerBlock, c.NormNumGroups, c.UpsampleFactor));
        Assert.True(c.UsePostQuantConv && c.MidBlockAddAttention);
        Assert.Equal(0.18215, c.ScalingFactor);
    }

    [Theory]
    [InlineData("""{ "block_out_channels": [8, 16], "up_block_types": ["UpDecoderBlock2D"] }""", "1 up_block_types for 2 block_out_channels")]
    [InlineData("""{ "block_out_channels": [8], "up_block_types": ["AttnUpDecoderBlock2D"] }""", "'AttnUpDecoderBlock2D' is not supported")]
    [InlineData("""{ "block_out_channels": [12], "up_block_types": ["UpDecoderBlock2D"], "norm_num_groups": 8 }""", "12 is not a multiple of norm_num_groups 8")]
    [InlineData("""{ "act_fn": "gelu" }""", "act_fn 'gelu'")]
    [InlineData("""{ "layers_per_block": "two" }""", "'layers_per_block' must be a positive integer")]
    [InlineData("""{ "_class_name": "VQModel" }""", "expected 'AutoencoderKL'")]
    [InlineData("""[1, 2]""", "not a JSON object")]
    [InlineData("""{ "block_out_channels": """, "not valid JSON")]
    public void RejectsUnsupportedConfigs(string json, string message)
    {
        var e = Assert.Throws<TensorFileException>(() => VaeConfig.Parse(json, "cfg.json"));
        Assert.Equal("cfg.json", e.FilePath);
        Assert.Contains(message, e.Message);
    }

    // ---- helpers ----

    private static List<KeyValuePair<string, StoredTensor>> ListOf(string folder)
    {
        using var file = TensorFile.Open(Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        return file.Tensors.Select(t => KeyValuePair.Create(t.Name, t)).ToList();
    }

    private static int[] Dims(StoredTensor t) => t.Shape.Select(d => (int)d).ToArray();

    // (N, H, W, C) tensor → NCHW host array, the fixture's layout
    private static float[] ToNchw(Tensor nhwc)
    {
        int n = nhwc.Dim(0), h = nhwc.Dim(1), w = nhwc.Dim(2), c = nhwc.Dim(3);
        var src = nhwc.ToArray();
        var dst = new float[src.Length];
        for (int b = 0; b < n; b++)
            for (int i = 0; i < h * w; i++)
                for (int k = 0; k < c; k++)
                    dst[(b * c + k) * h * w + i] = src[(b * h * w + i) * c + k];
        return dst;
    }

    private static double MaxAbs(float[] v) => v.Max(x => Math.Abs((double)x));

    private void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)expected[i] - actual[i]);
            if (!(d <= worst)) (worst, at) = (d, i); // NaN counts as worst
        }
        _log.WriteLine($"{what}: max abs err {worst:g3} (tolerance {tolerance:g3})");
        Assert.True(worst <= tolerance, $"{what}: max abs err {worst:g3} at {at} (expected {expected[at]}, got {actual[at]}) > {tolerance:g3}");
    }

    /// <summary>
    /// sample.py's preview PNG (save_image with normalize, value_range (−1, 1), nrow 2, padding 2) from our decoded
    /// images; uint8 tolerance as for uint8_hwc in the fixture README (|Δ| ≤ 1 on ≤ 0.1 % of values).
    /// </summary>
    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void PreviewGridMatchesSamplePysSavedImage(string device)
    {
        var backend = _pool[device];
        using var io = NpzArchive.Open(Fixtures.Path("vae", "vae_tiny_io.npz"));
        using var vae = VaeDecoder.Load(TinyFolder, backend);
        using var latents = backend.FromHost(io["z_div_scale"].ToFloat32(), 3, 4, 4, 4);
        using var images = vae.Decode(latents);
        var grid = DyDiT.Eval.Workers.Sampling.SampleImages.PreviewGrid(images.ToArray(), 3, 3, 32, 32, nrow: 2);
        var expected = io["sample_py_grid_uint8"];
        Assert.Equal([70L, 70, 3], expected.Shape);
        var want = expected.ReadAllBytes();
        Assert.Equal(want.Length, grid.Length);
        int off = 0;
        for (int i = 0; i < want.Length; i++)
        {
            Assert.True(Math.Abs(want[i] - grid[i]) <= 1, $"grid[{i}]: {grid[i]} vs {want[i]}");
            if (want[i] != grid[i]) off++;
        }
        Assert.True(off <= want.Length / 1000, $"{off} of {want.Length} grid values differ");
    }
}
