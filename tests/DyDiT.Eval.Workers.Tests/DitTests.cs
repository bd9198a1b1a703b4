using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Workers.Tests;

/// <summary>DiT against the official models.DiT (fixtures <c>dit/</c>): every stored array, CFG, checkpoint forms, strict keys, MACs.</summary>
public sealed class DitTests(BackendPool pool, ITestOutputHelper output) : IClassFixture<BackendPool>
{
    // fixtures/README.md, "Tolerances"
    private const double OutTolerance = 1e-5;
    private const double CfgTolerance = 3e-5;
    private const double IntermediateTolerance = 1e-5; // × max(1, max |ref|)

    private static DitConfig Config(string name) => DitConfig.FromJson(File.ReadAllText(Fixtures.Path("dit", name + ".json")));

    private static long[] Int64(StoredTensor t) => MemoryMarshal.Cast<byte, long>(t.ReadAllBytes()).ToArray();

    private double Compare(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, bool relativeToMax = false)
        => Close.MaxAbs(output, what, expected, actual, tolerance, relativeToMax);

    /// <summary>forward_with_cfg's mixing step on the recorded raw output: u + s·(c − u) on the first three channels, bit for bit.</summary>
    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void GuidanceMixesTheFirstThreeChannelsLikeForwardWithCfg(string device)
    {
        var backend = pool[device];
        using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
        var raw = io["cfg_model_out_raw"];
        float scale = (float)MemoryMarshal.Cast<byte, double>(io["cfg_scale"].ReadAllBytes())[0];
        using var mixed = backend.FromHost(raw.ToFloat32(), raw.Shape.Select(d => (int)d).ToArray());
        backend.ClassifierFreeGuidance(mixed, Dit.GuidedChannels, scale, mixed);
        Assert.Equal(MemoryMarshal.Cast<float, uint>(io["cfg_out"].ToFloat32()).ToArray(), MemoryMarshal.Cast<float, uint>(mixed.ToArray()).ToArray());
    }

    public static IEnumerable<object[]> FixtureNames => DeviceCases.Cross(
        ["dit_tiny"],
        ["dit_tiny_p4"]);

    [Theory, MemberData(nameof(FixtureNames))]
    public void MatchesEveryArrayOfTheOfficialForward(string device, string name)
    {
        var backend = pool[device];
        var config = Config(name);
        using var io = NpzArchive.Open(Fixtures.Path("dit", name + "_io.npz"));
        using var net = Dit.Load(Fixtures.Path("dit", name + ".pt"), config, backend);
        var covered = new HashSet<string>(StringComparer.Ordinal) { "x", "t", "y", "cfg_x", "cfg_t", "cfg_y", "cfg_scale" };

        // plain forward, with every intermediate the fixture stores
        var x = io["x"];
        var captured = new Dictionary<string, float[]>();
        using var tx = backend.FromHost(x.ToFloat32(), x.Shape.Select(d => (int)d).ToArray());
        using (var result = net.Forward(tx, Int64(io["t"]), Int64(io["y"]), (key, tensor) => captured[key] = tensor.ToArray()))
        {
            // intermediates in execution order, so that a failure points at the first stage that differs
            foreach (var (key, values) in captured)
            {
                Assert.True(io.Contains(key), $"the fixture has no '{key}'");
                Compare(key, io[key].ToFloat32(), values, IntermediateTolerance, relativeToMax: true);
                covered.Add(key);
            }
            Compare("out", io["out"].ToFloat32(), result.Output.ToArray(), OutTolerance);
            Compare("out vs out_fp64", io["out_fp64"].ToFloat32(), result.Output.ToArray(), OutTolerance);
            covered.UnionWith(["out", "out_fp64"]);
            Assert.Equal(tx.Dim(0) * config.MultiplyAccumulatesPerSample(), result.MultiplyAccumulates);
        }
        // the positional table: the loaded one, and the one computed when a file lacks it
        Compare("pos_embed (loaded)", io["pos_embed"].ToFloat32(), net.Trunk.pos_embed.ToArray(), 0);
        Compare("pos_embed (computed)", io["pos_embed"].ToFloat32(), SinCosPositionalEmbedding.Build(config.HiddenSize, config.GridSize), 1e-7);
        covered.Add("pos_embed");

        // classifier-free guidance: the second half of cfg_x is ignored, 3 channels guided
        var cfgX = io["cfg_x"];
        var cfgT = Int64(io["cfg_t"]);
        var cfgY = Int64(io["cfg_y"]);
        float scale = io["cfg_scale"].ToFloat32()[0];
        Assert.Equal(4f, scale);
        using var tcfg = backend.FromHost(cfgX.ToFloat32(), cfgX.Shape.Select(d => (int)d).ToArray());
        using (var guided = net.ForwardWithCfg(tcfg, cfgT, cfgY, scale))
        {
            Compare("cfg_out", io["cfg_out"].ToFloat32(), guided.Output.ToArray(), CfgTolerance);
            Compare("cfg_out vs cfg_out_fp64", io["cfg_out_fp64"].ToFloat32(), guided.Output.ToArray(), CfgTolerance);
            Assert.Equal(tcfg.Dim(0) * config.MultiplyAccumulatesPerSample(), guided.MultiplyAccumulates);
        }
        covered.UnionWith(["cfg_out", "cfg_out_fp64"]);

        int n = tcfg.Dim(0) / 2;
        var firstHalf = cfgX.ToFloat32().AsSpan(0, (int)(cfgX.ElementCount / 2)).ToArray();
        using var doubled = backend.FromHost([.. firstHalf, .. firstHalf], cfgX.Shape.Select(d => (int)d).ToArray());
        using (var raw = net.Forward(doubled, cfgT, cfgY))
            Compare("cfg_model_out_raw", io["cfg_model_out_raw"].ToFloat32(), raw.Output.ToArray(), OutTolerance);
        covered.Add("cfg_model_out_raw");
        Assert.True(n > 0);

        var missed = io.Arrays.Select(a => a.Name).Where(a => !covered.Contains(a)).ToArray();
        Assert.True(missed.Length == 0, "arrays not checked: " + string.Join(", ", missed));
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void TrainingCheckpointLoadsItsEmaWeights(string device)
    {
        var backend = pool[device];
        var config = Config("dit_tiny");
        using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
        var x = io["x"];
        using var tx = backend.FromHost(x.ToFloat32(), x.Shape.Select(d => (int)d).ToArray());
        using var plain = Dit.Load(Fixtures.Path("dit", "dit_tiny.pt"), config, backend);
        using var train = Dit.Load(Fixtures.Path("dit", "dit_tiny_train_ckpt.pt"), config, backend);
        using var a = plain.Forward(tx, Int64(io["t"]), Int64(io["y"]));
        using var b = train.Forward(tx, Int64(io["t"]), Int64(io["y"]));
        Assert.Equal(a.Output.ToArray(), b.Output.ToArray());
        Compare("train ckpt out", io["out"].ToFloat32(), b.Output.ToArray(), OutTolerance);
    }

    // ---- strict loading ----

    private sealed class ArrayTensor(string name, long[] shape, float[] values) : StoredTensor(name, shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination) => destination.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static Dictionary<string, StoredTensor> FixtureStateDict(TorchCheckpoint ckpt)
        => ckpt.StateDict().ToDictionary(kv => kv.Key, kv => (StoredTensor)kv.Value, StringComparer.Ordinal);

    private TensorFileException LoadEdited(string device, Action<Dictionary<string, StoredTensor>> edit)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("dit", "dit_tiny.pt"));
        var dict = FixtureStateDict(ckpt);
        edit(dict);
        var e = Assert.Throws<TensorFileException>(() => Dit.FromStateDict(dict, "edited.pt", Config("dit_tiny"), pool[device]).Dispose());
        output.WriteLine(e.Message);
        Assert.Equal("edited.pt", e.FilePath);
        return e;
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MissingKeyIsNamed(string device)
    {
        var e = LoadEdited(device, d => d.Remove("blocks.1.mlp.fc2.bias"));
        Assert.Contains("'blocks.1.mlp.fc2.bias'", e.Message);
        Assert.Contains("[64]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MisshapenKeyNamesBothShapes(string device)
    {
        var e = LoadEdited(device, d => d["x_embedder.proj.weight"] = new ArrayTensor("x_embedder.proj.weight", [64, 4, 4, 4], new float[64 * 64]));
        Assert.Contains("'x_embedder.proj.weight'", e.Message);
        Assert.Contains("[64, 4, 4, 4]", e.Message);
        Assert.Contains("[64, 4, 2, 2]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void PosEmbedOfAnotherResolutionIsRejected(string device)
    {
        var e = LoadEdited(device, d => d["pos_embed"] = new ArrayTensor("pos_embed", [1, 64, 64], new float[64 * 64]));
        Assert.Contains("'pos_embed'", e.Message);
        Assert.Contains("[1, 64, 64]", e.Message);
        Assert.Contains("[1, 16, 64]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void UnexpectedKeyIsNamed(string device)
    {
        // a DyDiT router is not part of a DiT
        var e = LoadEdited(device, d => d["blocks.0.attn_rate.router.weight"] = new ArrayTensor("blocks.0.attn_rate.router.weight", [3, 64], new float[192]));
        Assert.Contains("unexpected state dict key 'blocks.0.attn_rate.router.weight'", e.Message);
        Assert.Contains("[3, 64]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void WrongConfigIsReportedAsAShapeMismatch(string device)
    {
        var backend = pool[device];
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("dit", "dit_tiny.pt"));
        var e = Assert.Throws<TensorFileException>(() => Dit.FromStateDict(FixtureStateDict(ckpt), "dit_tiny.pt", Config("dit_tiny_p4"), backend));
        Assert.Contains("'x_embedder.proj.weight'", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void AbsentPosEmbedIsComputed(string device)
    {
        var backend = pool[device];
        var config = Config("dit_tiny");
        using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("dit", "dit_tiny.pt"));
        var dict = FixtureStateDict(ckpt);
        dict.Remove("pos_embed");
        using var net = Dit.FromStateDict(dict, "no-pos.pt", config, backend);
        var x = io["x"];
        using var tx = backend.FromHost(x.ToFloat32(), x.Shape.Select(d => (int)d).ToArray());
        using var result = net.Forward(tx, Int64(io["t"]), Int64(io["y"]));
        Compare("out (computed pos_embed)", io["out"].ToFloat32(), result.Output.ToArray(), OutTolerance);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void InputsAreChecked(string device)
    {
        var backend = pool[device];
        using var net = Dit.Load(Fixtures.Path("dit", "dit_tiny.pt"), Config("dit_tiny"), backend);
        using var wrongSize = backend.Zeros(1, 4, 16, 16);
        Assert.Throws<ArgumentException>(() => net.Forward(wrongSize, [0], [0]));
        using var x = backend.Zeros(2, 4, 8, 8);
        Assert.Throws<ArgumentException>(() => net.Forward(x, [0], [0, 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(x, [0, 0], [0, 11]));
        using var odd = backend.Zeros(3, 4, 8, 8);
        Assert.Throws<ArgumentException>(() => net.ForwardWithCfg(odd, [0, 0, 0], [0, 0, 10], 4f));
    }

    // ---- configuration and FLOPs ----

    [Fact]
    public void FixtureConfigsReadTheConstructorKwargs()
    {
        var c = Config("dit_tiny_p4");
        Assert.Equal(new DitConfig(InputSize: 16, PatchSize: 4, InChannels: 4, HiddenSize: 64, Depth: 2, NumHeads: 4, MlpRatio: 4.0,
            ClassDropoutProb: 0.1, NumClasses: 10, LearnSigma: true), c);
        Assert.Equal(8, c.OutChannels);
        Assert.Equal(16, c.Tokens);
        Assert.Equal(10, c.NullClass);
        Assert.Equal(11, c.LabelTableRows);
        Assert.Throws<FormatException>(() => DitConfig.FromJson("""{"input_size": 8, "qk_norm": true}"""));
        Assert.Throws<ArgumentException>(() => DitConfig.FromJson("""{"input_size": 9, "patch_size": 2}"""));
        Assert.Equal(DitConfig.Preset("DiT-XL/2"), DitConfig.FromJson("{}")); // the constructor defaults are XL/2's shape at 256²
    }

    [Theory]
    [InlineData("DiT-XL/2", 28, 1152, 2, 16)]
    [InlineData("DiT-XL/4", 28, 1152, 4, 16)]
    [InlineData("DiT-XL/8", 28, 1152, 8, 16)]
    [InlineData("DiT-L/2", 24, 1024, 2, 16)]
    [InlineData("DiT-L/4", 24, 1024, 4, 16)]
    [InlineData("DiT-L/8", 24, 1024, 8, 16)]
    [InlineData("DiT-B/2", 12, 768, 2, 12)]
    [InlineData("DiT-B/4", 12, 768, 4, 12)]
    [InlineData("DiT-B/8", 12, 768, 8, 12)]
    [InlineData("DiT-S/2", 12, 384, 2, 6)]
    [InlineData("DiT-S/4", 12, 384, 4, 6)]
    [InlineData("DiT-S/8", 12, 384, 8, 6)]
    public void PresetsMatchTheOfficialTable(string name, int depth, int hidden, int patch, int heads)
    {
        var c = DitConfig.Preset(name, inputSize: 64);
        Assert.Equal((depth, hidden, patch, heads, 64, 1000), (c.Depth, c.HiddenSize, c.PatchSize, c.NumHeads, c.InputSize, c.NumClasses));
        Assert.Equal(12, DitConfig.PresetNames.Count);
    }

    [Fact]
    public void DitXl2At256CountsAbout118Point6GigaMacs()
    {
        var c = DitConfig.Preset("DiT-XL/2", inputSize: 32);
        long macs = c.MultiplyAccumulatesPerSample();
        output.WriteLine($"DiT-XL/2 @256: {macs:N0} MACs per image");
        Assert.InRange(macs / 1e9, 118.5, 118.7);
        // DyDiT's loss.py per-block figures (GMACs): attention 4·T·D² + 2·T²·D, MLP 8·T·D² at T = 256
        long t = c.Tokens, d = c.HiddenSize;
        Assert.Equal(1_509_949_440L, 4 * t * d * d + 2 * t * t * d);
        Assert.Equal(2_717_908_992L, 2 * t * d * c.MlpHidden);
        // 512² (input 64): 4× the tokens, attention quadratic
        Assert.InRange(DitConfig.Preset("DiT-XL/2", inputSize: 64).MultiplyAccumulatesPerSample() / 1e9, 524, 526);
    }
}
