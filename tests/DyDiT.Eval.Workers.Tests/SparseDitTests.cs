using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Workers.Tests;

/// <summary>
/// SparseDiT against the official FlexDiT models.DiT (fixtures <c>sparsedit/</c>): every stored array of the three io
/// files (plain, 'sin', 'relat'), the network calls of the two sampling traces, checkpoint forms, strict keys, MACs,
/// semantic-size override.
/// </summary>
public sealed class SparseDitTests(BackendPool pool, ITestOutputHelper output) : IClassFixture<BackendPool>
{
    // fixtures/README.md, "Tolerances"
    private const double OutTolerance = 1e-5;
    private const double CfgTolerance = 3e-5;
    private const double IntermediateTolerance = 1e-5; // × max(1, max |ref|)

    private static SparseDitConfig Config(string name) => SparseDitConfig.FromJson(File.ReadAllText(Fixtures.Path("sparsedit", name + ".json")));

    private static long[] Int64(StoredTensor t) => MemoryMarshal.Cast<byte, long>(t.ReadAllBytes()).ToArray();

    private static int[] Shape(StoredTensor t) => t.Shape.Select(d => (int)d).ToArray();

    private double Compare(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, bool relativeToMax = false)
        => Close.MaxAbs(output, what, expected, actual, tolerance, relativeToMax);

    public static IEnumerable<object[]> FixtureNames => DeviceCases.Cross(
        ["sparsedit_tiny"],
        ["sparsedit_tiny_sin"],
        ["sparsedit_tiny_relat"]);

    [Theory, MemberData(nameof(FixtureNames))]
    public void MatchesEveryArrayOfTheOfficialForward(string device, string name)
    {
        var backend = pool[device];
        var config = Config(name);
        using var io = NpzArchive.Open(Fixtures.Path("sparsedit", name + "_io.npz"));
        using var net = SparseDit.Load(Fixtures.Path("sparsedit", name + ".pt"), config, backend);
        var covered = new HashSet<string>(StringComparer.Ordinal) { "x", "t", "y", "cfg_x", "cfg_t", "cfg_y", "cfg_scale" };

        // plain forward, every stage the fixture stores (under "inter_" + module name), in execution order
        var x = io["x"];
        var captured = new List<(string Key, float[] Values)>();
        using var tx = backend.FromHost(x.ToFloat32(), Shape(x));
        using (var result = net.Forward(tx, Int64(io["t"]), Int64(io["y"]), (key, tensor) => captured.Add((key, tensor.ToArray()))))
        {
            foreach (var (key, values) in captured)
            {
                string stored = "inter_" + key;
                Assert.True(io.Contains(stored), $"the fixture has no '{stored}'");
                Compare(stored, io[stored].ToFloat32(), values, IntermediateTolerance, relativeToMax: true);
                covered.Add(stored);
            }
            Compare("out", io["out"].ToFloat32(), result.Output.ToArray(), OutTolerance);
            Compare("out vs out_fp64", io["out_fp64"].ToFloat32(), result.Output.ToArray(), OutTolerance);
            covered.UnionWith(["out", "out_fp64"]);
            Assert.Equal(tx.Dim(0) * config.MultiplyAccumulatesPerSample(), result.MultiplyAccumulates);
        }
        Compare("pos_embed (loaded)", io["pos_embed"].ToFloat32(), net.Trunk.pos_embed.ToArray(), 0);
        Compare("pos_embed (computed)", io["pos_embed"].ToFloat32(), SinCosPositionalEmbedding.Build(config.HiddenSize, config.GridSize), 1e-7);
        covered.Add("pos_embed");

        if (config.AttnRelatPos == SparseDitAttentionBias.Relat)
        {
            // the buffer as stored, BEiT's construction, and the (heads, T, T) bias block 0 adds
            Assert.Equal(Int64(io["relative_position_index"]), RelativePositionBias.ComputeIndex(config.GridSize));
            Compare("relative_position_bias0", io["relative_position_bias0"].ToFloat32(), net.relative_pos_embedder[0].Bias.ToArray(), 0);
            covered.UnionWith(["relative_position_index", "relative_position_bias0"]);
        }

        // classifier-free guidance: the second half of cfg_x is ignored, 3 channels guided
        var cfgX = io["cfg_x"];
        float scale = io["cfg_scale"].ToFloat32()[0];
        Assert.Equal(4f, scale);
        using var tcfg = backend.FromHost(cfgX.ToFloat32(), Shape(cfgX));
        using (var guided = net.ForwardWithCfg(tcfg, Int64(io["cfg_t"]), Int64(io["cfg_y"]), scale))
        {
            Compare("cfg_out", io["cfg_out"].ToFloat32(), guided.Output.ToArray(), CfgTolerance);
            Compare("cfg_out vs cfg_out_fp64", io["cfg_out_fp64"].ToFloat32(), guided.Output.ToArray(), CfgTolerance);
            Assert.Equal(tcfg.Dim(0) * config.MultiplyAccumulatesPerSample(), guided.MultiplyAccumulates);
        }
        covered.UnionWith(["cfg_out", "cfg_out_fp64"]);

        var missed = io.Arrays.Select(a => a.Name).Where(a => !covered.Contains(a)).ToArray();
        Assert.True(missed.Length == 0, "arrays not checked: " + string.Join(", ", missed));
    }

    /// <summary>
    /// Every network call of the two 10-step sampling traces (DDPM cfg 1.5, DDIM cfg 4): forward_with_cfg on the recorded
    /// model input reproduces the recorded (guided) model output. The inputs grow to a few hundred, so this exercises the
    /// blocks far from the io files' unit-scale inputs.
    /// </summary>
    public static IEnumerable<object[]> Traces => DeviceCases.Cross(
        ["sparsedit_tiny_trace_cfg1.5_N10"],
        ["sparsedit_tiny_trace_ddim_cfg4_N10"]);

    [Theory, MemberData(nameof(Traces))]
    public void ReproducesTheModelCallsOfTheSamplingTraces(string device, string name)
    {
        var backend = pool[device];
        using var trace = NpzArchive.Open(Fixtures.Path("sparsedit", name + ".npz"));
        using var net = SparseDit.Load(Fixtures.Path("sparsedit", "sparsedit_tiny.pt"), Config("sparsedit_tiny"), backend);
        var modelIn = trace["model_in"];
        var inputs = modelIn.ToFloat32();
        var outputs = trace["model_out"].ToFloat32();
        var times = Int64(trace["model_t"]);
        var labels = Int64(trace["y"]);
        float scale = trace["cfg_scale"].ToFloat32()[0];
        int steps = (int)modelIn.Shape[0], m = (int)modelIn.Shape[1];
        int inSize = inputs.Length / steps, outSize = outputs.Length / steps;
        for (int s = 0; s < steps; s++)
        {
            using var tx = backend.FromHost(inputs.AsSpan(s * inSize, inSize), [m, .. Shape(modelIn)[2..]]);
            using var guided = net.ForwardWithCfg(tx, times.AsSpan(s * m, m), labels, scale);
            Compare($"{name} step {s} (t = {times[s * m]})", outputs.AsSpan(s * outSize, outSize).ToArray(), guided.Output.ToArray(),
                CfgTolerance, relativeToMax: true);
        }
    }

    // ---- checkpoints and strict loading ----

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void TrainingCheckpointLoadsItsEmaWeights(string device)
    {
        var backend = pool[device];
        // train.py's layout {'ema': state dict, 'args': ...}, made from the bare fixture by wrapping its pickle
        var members = ReadZip(Fixtures.Path("sparsedit", "sparsedit_tiny.pt"));
        var (pklName, pkl) = members.Single(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal));
        Assert.True(pkl[0] == 0x80 && pkl[^1] == (byte)'.', "unexpected pickle framing");
        var wrapped = new List<byte> { 0x80, 2, (byte)'}' };
        wrapped.AddRange(BinUnicode("ema"));
        wrapped.AddRange(pkl.AsSpan(2, pkl.Length - 3).ToArray()); // the OrderedDict, without PROTO and STOP
        wrapped.Add((byte)'s');
        wrapped.AddRange(BinUnicode("args"));
        wrapped.AddRange([(byte)'N', (byte)'s', (byte)'.']);
        string path = Path.Combine(Path.GetTempPath(), $"sparsedit-train-{Guid.NewGuid():N}.pt");
        try
        {
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
                foreach (var (entryName, data) in members)
                {
                    using var stream = zip.CreateEntry(entryName, CompressionLevel.NoCompression).Open();
                    stream.Write(entryName == pklName ? wrapped.ToArray() : data);
                }
            using var io = NpzArchive.Open(Fixtures.Path("sparsedit", "sparsedit_tiny_io.npz"));
            using var net = SparseDit.Load(path, Config("sparsedit_tiny"), backend);
            using var tx = backend.FromHost(io["x"].ToFloat32(), Shape(io["x"]));
            using var result = net.Forward(tx, Int64(io["t"]), Int64(io["y"]));
            Compare("training checkpoint out", io["out"].ToFloat32(), result.Output.ToArray(), OutTolerance);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] BinUnicode(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        return [(byte)'X', .. BitConverter.GetBytes(bytes.Length), .. bytes];
    }

    private static List<(string Name, byte[] Data)> ReadZip(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        return zip.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, ms.ToArray());
        }).ToList();
    }

    private sealed class ArrayTensor(string name, long[] shape, float[] values) : StoredTensor(name, shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination) => destination.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static Dictionary<string, StoredTensor> FixtureStateDict(string name)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("sparsedit", name + ".pt"));
        // read everything now: the tensors read from the checkpoint file, which closes here
        return ckpt.StateDict().ToDictionary(kv => kv.Key, kv => (StoredTensor)new Materialized(kv.Value), StringComparer.Ordinal);
    }

    private sealed class Materialized(StoredTensor source) : StoredTensor(source.Name, [.. source.Shape], source.DType)
    {
        private readonly byte[] _bytes = source.ReadAllBytes();

        public override void CopyValuesTo(Stream destination) => destination.Write(_bytes);
    }

    private TensorFileException LoadEdited(string device, string name, Action<Dictionary<string, StoredTensor>> edit, SparseDitConfig? config = null)
    {
        var dict = FixtureStateDict(name);
        edit(dict);
        var e = Assert.Throws<TensorFileException>(() => SparseDit.FromStateDict(dict, "edited.pt", config ?? Config(name), pool[device]).Dispose());
        output.WriteLine(e.Message);
        Assert.Equal("edited.pt", e.FilePath);
        return e;
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MissingKeyIsNamed(string device)
    {
        var e = LoadEdited(device, "sparsedit_tiny", d => d.Remove("dumbbell_blocks.0.token_recover_blocks.0.merged_layer1.bias"));
        Assert.Contains("'dumbbell_blocks.0.token_recover_blocks.0.merged_layer1.bias'", e.Message);
        Assert.Contains("[64]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MisshapenKeyNamesBothShapes(string device)
    {
        var e = LoadEdited(device, "sparsedit_tiny", d => d["dumbbell_blocks.0.token_merge_blocks.0.attn.kv.weight"] =
            new ArrayTensor("kv", [192, 64], new float[192 * 64]));
        Assert.Contains("'dumbbell_blocks.0.token_merge_blocks.0.attn.kv.weight'", e.Message);
        Assert.Contains("[192, 64]", e.Message);
        Assert.Contains("[128, 64]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void UnexpectedKeyIsNamed(string device)
    {
        // a 'relat' table in a model built without attention bias
        var e = LoadEdited(device, "sparsedit_tiny", d => d["relative_pos_embedder.0.relative_position_bias_table"] =
            new ArrayTensor("table", [52, 4], new float[52 * 4]));
        Assert.Contains("unexpected state dict key 'relative_pos_embedder.0.relative_position_bias_table'", e.Message);
        Assert.Contains("[52, 4]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void RelatCheckpointNeedsTheRelatConfig(string device)
    {
        // the same file with attn_relat_pos=None: the relative-position keys are unexpected
        var e = LoadEdited(device, "sparsedit_tiny_relat", _ => { }, Config("sparsedit_tiny_relat") with { AttnRelatPos = SparseDitAttentionBias.None });
        Assert.Contains("unexpected state dict key 'relative_pos_embedder.0.", e.Message);
        // and a 'relat' model needs its table
        e = LoadEdited(device, "sparsedit_tiny_relat", d => d.Remove("relative_pos_embedder.0.relative_position_bias_table"));
        Assert.Contains("'relative_pos_embedder.0.relative_position_bias_table'", e.Message);
        Assert.Contains("[52, 2]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void RelativePositionIndexIsCheckedAndMayBeComputed(string device)
    {
        var backend = pool[device];
        var e = LoadEdited(device, "sparsedit_tiny_relat", d => d["relative_pos_embedder.0.relative_position_index"] =
            new ArrayTensor("index", [16, 16], new float[256]));
        Assert.Contains("'relative_pos_embedder.0.relative_position_index'", e.Message);
        Assert.Contains("float32", e.Message);

        var dict = FixtureStateDict("sparsedit_tiny_relat");
        dict.Remove("relative_pos_embedder.0.relative_position_index");
        dict.Remove("pos_embed");
        using var net = SparseDit.FromStateDict(dict, "no-buffers.pt", Config("sparsedit_tiny_relat"), backend);
        using var io = NpzArchive.Open(Fixtures.Path("sparsedit", "sparsedit_tiny_relat_io.npz"));
        using var tx = backend.FromHost(io["x"].ToFloat32(), Shape(io["x"]));
        using var result = net.Forward(tx, Int64(io["t"]), Int64(io["y"]));
        Compare("out (computed pos_embed and index)", io["out"].ToFloat32(), result.Output.ToArray(), OutTolerance);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void WrongGroupingIsReportedAsAKeyFault(string device)
    {
        var backend = pool[device];
        // same depth, other dumbbell layout: the state dict has no second semantic block
        var config = Config("sparsedit_tiny") with { DumbbellGroup = new DumbbellGroup(1, 2, 1, 0) };
        var dict = FixtureStateDict("sparsedit_tiny");
        var e = Assert.Throws<TensorFileException>(() => SparseDit.FromStateDict(dict, "sparsedit_tiny.pt", config, backend));
        output.WriteLine(e.Message);
        Assert.Contains("'dumbbell_blocks.0.semantic_blocks.1.", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void InputsAreChecked(string device)
    {
        var backend = pool[device];
        using var net = SparseDit.Load(Fixtures.Path("sparsedit", "sparsedit_tiny.pt"), Config("sparsedit_tiny"), backend);
        using var wrongSize = backend.Zeros(1, 4, 16, 16);
        Assert.Throws<ArgumentException>(() => net.Forward(wrongSize, [0], [0]));
        using var x = backend.Zeros(2, 4, 8, 8);
        Assert.Throws<ArgumentException>(() => net.Forward(x, [0], [0, 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(x, [0, 0], [0, 11]));
        Assert.Throws<ArgumentException>(() => net.Forward(x, [0, 0], [0, 1], semanticSize: 0));
        using var odd = backend.Zeros(3, 4, 8, 8);
        Assert.Throws<ArgumentException>(() => net.ForwardWithCfg(odd, [0, 0, 0], [0, 0, 10], 4f));
    }

    // ---- semantic size, configuration and MACs ----

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void SemanticSizeCanBeChangedPerCall(string device)
    {
        var backend = pool[device];
        var config = Config("sparsedit_tiny");
        using var io = NpzArchive.Open(Fixtures.Path("sparsedit", "sparsedit_tiny_io.npz"));
        using var net = SparseDit.Load(Fixtures.Path("sparsedit", "sparsedit_tiny.pt"), config, backend);
        using var tx = backend.FromHost(io["x"].ToFloat32(), Shape(io["x"]));
        var t = Int64(io["t"]);
        var y = Int64(io["y"]);
        using var same = net.Forward(tx, t, y, semanticSize: config.SemanticSize);
        Compare("out (S = 2 given explicitly)", io["out"].ToFloat32(), same.Output.ToArray(), OutTolerance);
        foreach (int s in new[] { 1, 3, 4, 6 }) // 3: overlapping pooling bins on the 4×4 grid; 6: finer than the grid
        {
            var pooledShapes = new List<int>();
            using var other = net.Forward(tx, t, y, (key, tensor) => { if (key.StartsWith("down_sample", StringComparison.Ordinal)) pooledShapes.Add(tensor.Dim(1)); }, semanticSize: s);
            Assert.Equal(new[] { s * s }, pooledShapes);
            Assert.Equal(tx.Dim(0) * config.MultiplyAccumulatesPerSample(s), other.MultiplyAccumulates);
            var values = other.Output.ToArray();
            Assert.All(values, v => Assert.True(float.IsFinite(v)));
            Assert.NotEqual(same.Output.ToArray(), values);
        }
    }

    [Fact]
    public void FixtureConfigsReadTheConstructorKwargs()
    {
        var c = Config("sparsedit_tiny");
        Assert.Equal(new SparseDitConfig(InputSize: 8, PatchSize: 2, InChannels: 4, HiddenSize: 64, Depth: 6, NumPoolingformer: 1,
            NumDumbbell: 1, NumNormalBlock: 1, SemanticSize: 2, NumHeads: 4, NumClasses: 10)
        { DumbbellGroup = new DumbbellGroup(1, 1, 1, 1) }, c);
        Assert.Equal((8, 16, 4, 10), (c.OutChannels, c.Tokens, c.GridSize, c.NullClass));
        Assert.Equal(SparseDitAttentionBias.Sin, Config("sparsedit_tiny_sin").AttnRelatPos);
        Assert.Equal(SparseDitAttentionBias.Relat, Config("sparsedit_tiny_relat").AttnRelatPos);
        Assert.Equal(52, Config("sparsedit_tiny_relat").RelativeTableRows);

        // the constructor defaults: XL/2 widths, [2, 2, 1, 1] dumbbells, S = 8
        var defaults = SparseDitConfig.FromJson("{}");
        Assert.Equal(new DumbbellGroup(2, 2, 1, 1), defaults.DumbbellGroup);
        Assert.Equal((28, 1152, 16, 8), (defaults.Depth, defaults.HiddenSize, defaults.NumHeads, defaults.SemanticSize));

        Assert.Throws<FormatException>(() => SparseDitConfig.FromJson("""{"longshortcut": true}"""));
        Assert.Throws<FormatException>(() => SparseDitConfig.FromJson("""{"attn_relat_pos": "rope"}"""));
        Assert.Throws<FormatException>(() => SparseDitConfig.FromJson("""{"dumbbell_group": [1, 3, 1]}"""));
        // the official assertion sum(group)·num_dumbbell + num_poolingformer + num_normal_block == depth
        var e = Assert.Throws<ArgumentException>(() => SparseDitConfig.FromJson("""{"depth": 27}"""));
        Assert.Contains("depth 27", e.Message);
        Assert.Throws<ArgumentException>(() => SparseDitConfig.FromJson("""{"dumbbell_group": [2, 3, 0, 1]}""")); // no recovery
        Assert.Throws<ArgumentException>(() => SparseDitConfig.FromJson("""{"semantic_size": 0}"""));
    }

    [Fact]
    public void SparseDitXl2PresetAndItsMacs()
    {
        var c = SparseDitConfig.Preset("SparseDiT-XL/2");
        Assert.Equal(new DumbbellGroup(1, 3, 1, 1), c.DumbbellGroup);
        Assert.Equal((2, 4, 2, 8, 28), (c.NumPoolingformer, c.NumDumbbell, c.NumNormalBlock, c.SemanticSize, c.Depth));
        Assert.Throws<ArgumentException>(() => SparseDitConfig.Preset("DiT-XL/2"));

        double dit = DitConfig.Preset("DiT-XL/2").MultiplyAccumulatesPerSample() / 1e9;
        foreach (int s in new[] { 6, 8, 10, 12, 16 })
            output.WriteLine($"SparseDiT-XL/2 @256, S = {s}: {c.MultiplyAccumulatesPerSample(s) / 1e9:F2} G MACs per image (DiT-XL/2: {dit:F2} G)");
        // fewer tokens, less work; S = 16 keeps all 256 tokens but still saves the pooling blocks' attention
        Assert.True(c.MultiplyAccumulatesPerSample(6) < c.MultiplyAccumulatesPerSample(10));
        Assert.True(c.MultiplyAccumulatesPerSample(8) < dit * 1e9 * 0.7);
    }
}
