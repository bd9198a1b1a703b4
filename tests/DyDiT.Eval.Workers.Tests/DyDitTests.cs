using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Tests.Common;
using DyDiT.Eval.Workers.Diffusion;
using DyDiT.Eval.Workers.Networks;
using Xunit;
using Xunit.Abstractions;

namespace DyDiT.Eval.Workers.Tests;

/// <summary>
/// DyDiT against the official DyDiT/models.py (fixtures <c>dydit/</c>): every array of the io file, the per-step
/// masks of the sampling trace (open-loop replay of the recorded inputs, then the closed loop), loss.py's activate
/// rate, the executed multiply-accumulates, both checkpoint forms and strict keys.
/// </summary>
public sealed class DyDitTests(BackendPool pool, ITestOutputHelper output) : IClassFixture<BackendPool>
{
    // fixtures/README.md, "Tolerances"
    private const double OutTolerance = 1e-5;
    private const double CfgTolerance = 3e-5;
    private const double IntermediateTolerance = 1e-5; // × max(1, max |ref|)
    private const double RatioTolerance = 1e-6;         // loss.py computes the rate in float32

    private static DitConfig Config() => DitConfig.FromJson(File.ReadAllText(Fixtures.Path("dydit", "dydit_tiny.json")));

    private static string Checkpoint => Fixtures.Path("dydit", "dydit_tiny.pt");

    private static long[] Int64(StoredTensor t) => MemoryMarshal.Cast<byte, long>(t.ReadAllBytes()).ToArray();

    private static double[] Float64(StoredTensor t) => MemoryMarshal.Cast<byte, double>(t.ReadAllBytes()).ToArray();

    private static Tensor Upload(IBackend backend, StoredTensor a) => backend.FromHost(a.ToFloat32(), a.Shape.Select(d => (int)d).ToArray());

    private double Compare(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, bool relativeToMax = false)
        => Close.MaxAbs(output, what, expected, actual, tolerance, relativeToMax);

    private void Exact(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i], $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
        output.WriteLine($"{what}: {expected.Length} decisions identical");
    }

    /// <summary>The three masks of a call equal the fixture's (exactly), under the given name prefix.</summary>
    private void MasksEqual(NpzArchive file, string prefix, DyDitRouting routing, ICollection<string> covered, int? step = null)
    {
        foreach (var (name, actual) in new[] { ("attn_masks", routing.AttnMasks), ("mlp_masks", routing.MlpMasks), ("token_select", routing.TokenSelect) })
        {
            var all = file[prefix + name].ToFloat32();
            int per = actual.Length;
            var expected = step is { } s ? all.AsSpan(s * per, per) : all;
            Exact(step is { } k ? $"{prefix}{name}[{k}]" : prefix + name, expected, actual);
            covered.Add(prefix + name);
        }
    }

    /// <summary>
    /// Executed multiply-accumulates = the dense DiT count − the dense attention/MLP work + what ran of it + the
    /// routers (two Linear(D, H − 1) per distinct timestep, the token router on every token), block by block.
    /// </summary>
    private static void MacsAddUp(DitConfig c, DyDitForwardResult r, int distinctTimesteps)
    {
        long b = r.Routing.Batch, d = c.HiddenSize, routers = 0;
        if (!r.Routing.Complete)
            routers = c.Depth * (2L * distinctTimesteps * d * (c.NumHeads - 1) + b * c.Tokens * (d * (d / 16) + d / 16));
        Assert.Equal(b * c.MultiplyAccumulatesPerSample(), r.DenseMultiplyAccumulates);
        Assert.Equal(r.DenseMultiplyAccumulates - r.DenseAttentionMlpMultiplyAccumulates + r.AttentionMlpMultiplyAccumulates + routers,
            r.MultiplyAccumulates);
        // the executed share of the routed work is loss.py's activate rate with this model's own per-block costs
        var (attn, mlp) = DyDitRouting.BlockMultiplyAccumulates(c);
        Assert.Equal(r.Routing.ActivateRatio(attn, mlp), (double)r.AttentionMlpMultiplyAccumulates / r.DenseAttentionMlpMultiplyAccumulates, 12);
    }

    private void RatiosMatch(DyDitRouting routing, double xl2, double s2, string what)
    {
        var (xa, xm) = DyDitRouting.LossPyFlops("DiT-XL/2");
        var (sa, sm) = DyDitRouting.LossPyFlops("DiT-S/2");
        double oursXl = routing.ActivateRatio(xa, xm), oursS = routing.ActivateRatio(sa, sm);
        output.WriteLine($"{what}: activate rate XL/2 {oursXl:F7} (ref {xl2:F7}), S/2 {oursS:F7} (ref {s2:F7})");
        Assert.True(Math.Abs(oursXl - xl2) <= RatioTolerance, $"{what}: XL/2 rate {oursXl} vs {xl2}");
        Assert.True(Math.Abs(oursS - s2) <= RatioTolerance, $"{what}: S/2 rate {oursS} vs {s2}");
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MatchesEveryArrayOfTheOfficialForward(string device)
    {
        var backend = pool[device];
        var config = Config();
        using var io = NpzArchive.Open(Fixtures.Path("dydit", "dydit_tiny_io.npz"));
        using var net = DyDit.Load(Checkpoint, config, backend);
        var covered = new HashSet<string>(StringComparer.Ordinal) { "x", "t", "y", "cfg_x", "cfg_t", "cfg_y" };
        var t = Int64(io["t"]);
        var y = Int64(io["y"]);

        // dynamic forward (complete_model=False)
        using var x = Upload(backend, io["x"]);
        float[]? tEmb = null;
        using (var r = net.Forward(x, t, y, inspect: (key, tensor) => { if (key == "t_emb") tEmb = tensor.ToArray(); }))
        {
            Compare("t_emb", io["t_emb"].ToFloat32(), tEmb!, IntermediateTolerance, relativeToMax: true);
            Compare("attn_logits", io["attn_logits"].ToFloat32(), r.Routing.AttnLogits, IntermediateTolerance, relativeToMax: true);
            Compare("mlp_logits", io["mlp_logits"].ToFloat32(), r.Routing.MlpLogits, IntermediateTolerance, relativeToMax: true);
            Compare("token_logits", io["token_logits"].ToFloat32(), r.Routing.TokenLogits, IntermediateTolerance, relativeToMax: true);
            MasksEqual(io, "", r.Routing, covered);
            Compare("out", io["out"].ToFloat32(), r.Output.ToArray(), OutTolerance);
            Compare("out vs out_fp64", io["out_fp64"].ToFloat32(), r.Output.ToArray(), OutTolerance);
            RatiosMatch(r.Routing, Float64(io["flops_ratio_XL2"])[0], Float64(io["flops_ratio_S2"])[0], "io batch");
            MacsAddUp(config, r, distinctTimesteps: t.Distinct().Count());
            output.WriteLine($"MACs: executed {r.MultiplyAccumulates:N0} / dense {r.DenseMultiplyAccumulates:N0} = {r.MacRatio:F4}; " +
                             $"attention + MLP {r.AttentionMlpMultiplyAccumulates:N0} / {r.DenseAttentionMlpMultiplyAccumulates:N0}");
            Assert.True(r.MultiplyAccumulates < r.DenseMultiplyAccumulates);
        }
        covered.UnionWith(["t_emb", "attn_logits", "mlp_logits", "token_logits", "out", "out_fp64", "flops_ratio_XL2", "flops_ratio_S2"]);

        // complete_model=True: the dense DiT path with the same weights, the DiT MAC count exactly
        using (var r = net.Forward(x, t, y, completeModel: true))
        {
            Compare("out_complete", io["out_complete"].ToFloat32(), r.Output.ToArray(), OutTolerance);
            Assert.Equal(r.DenseMultiplyAccumulates, r.MultiplyAccumulates);
            Assert.All(r.Routing.TokenSelect, v => Assert.Equal(1f, v));
            MacsAddUp(config, r, 0);
        }
        covered.Add("out_complete");

        // forward_with_cfg: inner call on [x[:n]; x[:n]], masks of the inner call, 3 guided channels
        var cfgT = Int64(io["cfg_t"]);
        var cfgY = Int64(io["cfg_y"]);
        using var cfgX = Upload(backend, io["cfg_x"]);
        foreach (var (scale, name) in new[] { (1.5f, "cfg1.5_out"), (4f, "cfg4_out") })
        {
            using var r = net.ForwardWithCfg(cfgX, cfgT, cfgY, scale);
            Compare(name, io[name].ToFloat32(), r.Output.ToArray(), CfgTolerance);
            Compare(name + " vs fp64", io[name + "_fp64"].ToFloat32(), r.Output.ToArray(), CfgTolerance);
            MasksEqual(io, "cfg_", r.Routing, covered);
            covered.UnionWith([name, name + "_fp64"]);
        }
        var first = io["cfg_x"].ToFloat32().AsSpan(0, (int)(io["cfg_x"].ElementCount / 2)).ToArray();
        using var doubled = backend.FromHost([.. first, .. first], io["cfg_x"].Shape.Select(d => (int)d).ToArray());
        using (var raw = net.Forward(doubled, cfgT, cfgY))
        {
            Compare("cfg_model_out_raw", io["cfg_model_out_raw"].ToFloat32(), raw.Output.ToArray(), OutTolerance);
            // the width masks depend on t only: both halves of the CFG batch share them
            int n = cfgT.Length / 2, per = config.Depth * config.NumHeads;
            Assert.Equal(raw.Routing.AttnMasks.AsSpan(0, n * per).ToArray(), raw.Routing.AttnMasks.AsSpan(n * per, n * per).ToArray());
            Assert.Equal(raw.Routing.MlpMasks.AsSpan(0, n * per).ToArray(), raw.Routing.MlpMasks.AsSpan(n * per, n * per).ToArray());
            MacsAddUp(config, raw, distinctTimesteps: cfgT.Distinct().Count());
        }
        covered.Add("cfg_model_out_raw");

        var missed = io.Arrays.Select(a => a.Name).Where(a => !covered.Contains(a)).ToArray();
        Assert.True(missed.Length == 0, "arrays not checked: " + string.Join(", ", missed));
    }

    /// <summary>
    /// The sampling trace (sample_ddp.py recipe, cfg 1.5, 10 steps): each step's recorded network input replayed
    /// (output, masks, activate rates, printed means), then the whole loop re-run from x_T with the recorded noise.
    /// </summary>
    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void ReplaysTheSamplingTrace(string device)
    {
        var backend = pool[device];
        var config = Config();
        using var trace = NpzArchive.Open(Fixtures.Path("dydit", "dydit_tiny_trace.npz"));
        using var net = DyDit.Load(Checkpoint, config, backend);
        var modelT = Int64(trace["model_t"]);
        var y = Int64(trace["y"]);
        var modelIn = trace["model_in"].ToFloat32();
        var outRaw = trace["model_out_raw"].ToFloat32();
        var xl2 = Float64(trace["flops_ratio_XL2"]);
        var s2 = Float64(trace["flops_ratio_S2"]);
        var printed = new[] { Float64(trace["printed_attn_channel"]), Float64(trace["printed_mlp_channel"]), Float64(trace["printed_mlp_token"]) };
        int steps = xl2.Length, m = y.Length, c = config.InChannels, l = config.InputSize;
        int inPer = m * c * l * l, outPer = m * config.OutChannels * l * l;
        var covered = new HashSet<string>(StringComparer.Ordinal) { "model_t", "y", "model_in" };

        // open loop: the recorded inputs of every step
        for (int s = 0; s < steps; s++)
        {
            var ts = modelT.AsSpan(s * m, m).ToArray();
            using var x = backend.FromHost(modelIn.AsSpan(s * inPer, inPer), m, c, l, l);
            using var r = net.Forward(x, ts, y);
            Compare($"model_out_raw[{s}] (t = {ts[0]})", outRaw.AsSpan(s * outPer, outPer), r.Output.ToArray(), IntermediateTolerance, relativeToMax: true);
            MasksEqual(trace, "", r.Routing, covered, step: s);
            RatiosMatch(r.Routing, xl2[s], s2[s], $"step {s}");
            var means = r.Routing.MaskMeans();
            double[] ours = [means.AttnChannel, means.MlpChannel, means.MlpToken];
            for (int k = 0; k < 3; k++)
                Assert.True(Math.Abs(Math.Round(ours[k], 4, MidpointRounding.ToEven) - printed[k][s]) < 1e-9, $"printed mean {k} at step {s}: {ours[k]} vs {printed[k][s]}");
            MacsAddUp(config, r, distinctTimesteps: 1);
            output.WriteLine($"step {s}: executed/dense MACs {r.MacRatio:F4}");
        }
        covered.UnionWith(["model_out_raw", "flops_ratio_XL2", "flops_ratio_S2", "printed_attn_channel", "printed_mlp_channel", "printed_mlp_token"]);

        // closed loop: p_sample_loop with forward_with_cfg(scale 1.5) and the recorded noise
        var schedule = DiffusionSchedule.Create(steps.ToString());
        Assert.Equal(Int64(trace["timestep_map"]).Select(v => (int)v), schedule.TimestepMap);
        var noise = trace["step_noise"].ToFloat32();
        var xPrev = trace["x_prev"].ToFloat32();
        var current = trace["x_T"].ToFloat32();
        Assert.Equal(trace["z"].ToFloat32(), current.AsSpan(0, inPer / 2).ToArray());
        var mean = new float[inPer];
        var logVar = new float[inPer];
        var x0 = new float[inPer];
        for (int s = 0; s < steps; s++)
        {
            int index = steps - 1 - s;
            var ts = Enumerable.Repeat((long)schedule.TimestepMap[index], m).ToArray();
            Assert.Equal(modelT.AsSpan(s * m, m).ToArray(), ts);
            using var x = backend.FromHost(current, m, c, l, l);
            using var r = net.ForwardWithCfg(x, ts, y, 1.5f);
            MasksEqual(trace, "", r.Routing, covered, step: s);
            SamplingSteps.PMeanVariance(schedule, index, m, c, current, r.Output.ToArray(), mean, logVar, x0);
            var next = new float[inPer];
            SamplingSteps.PSample(index, mean, logVar, noise.AsSpan(s * inPer, inPer), next);
            Compare($"x_prev[{s}]", xPrev.AsSpan(s * inPer, inPer), next, IntermediateTolerance, relativeToMax: true);
            current = next;
        }
        Compare("samples", trace["samples"].ToFloat32(), current.AsSpan(0, inPer / 2), IntermediateTolerance, relativeToMax: true);
        Compare("samples vs fp64 replay", trace["samples_fp64_replay"].ToFloat32(), current.AsSpan(0, inPer / 2), IntermediateTolerance, relativeToMax: true);
        covered.UnionWith(["timestep_map", "step_noise", "x_prev", "x_T", "z", "samples", "samples_fp64_replay"]);

        var missed = trace.Arrays.Select(a => a.Name).Where(a => !covered.Contains(a)).ToArray();
        Assert.True(missed.Length == 0, "arrays not checked: " + string.Join(", ", missed));
    }

    // ---- checkpoint forms ----

    /// <summary>
    /// A train.py-style checkpoint {'model', 'ema', 'opt', 'args'} built from the fixture: 'ema' is the fixture's state
    /// dict, 'model' the same structure over storages holding other values (the fixture's × 0.5), 'opt' an AdamW-like
    /// dict, 'args' an argparse.Namespace — so loading must pick 'ema' and tolerate the rest.
    /// </summary>
    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void TrainingCheckpointLoadsItsEmaWeights(string device)
    {
        var backend = pool[device];
        var config = Config();
        string dir = Path.Combine(Path.GetTempPath(), "dydit-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "0150000.pt");
            File.WriteAllBytes(path, TrainingCheckpoint(Checkpoint));
            using var io = NpzArchive.Open(Fixtures.Path("dydit", "dydit_tiny_io.npz"));
            using var x = Upload(backend, io["x"]);
            var t = Int64(io["t"]);
            var y = Int64(io["y"]);
            using var plain = DyDit.Load(Checkpoint, config, backend);
            using var train = DyDit.Load(path, config, backend);
            using var a = plain.Forward(x, t, y);
            using var b = train.Forward(x, t, y);
            Assert.Equal(a.Output.ToArray(), b.Output.ToArray());
            Assert.Equal(a.Routing.TokenSelect, b.Routing.TokenSelect);
            Compare("training checkpoint out", io["out"].ToFloat32(), b.Output.ToArray(), OutTolerance);

            // the 'model' entry really is different: read on its own it gives other weights
            using var ckpt = TorchCheckpoint.Open(path);
            var root = (PyDict)ckpt.Root!;
            var model = (PyDict)root["model"]!;
            var ema = (PyDict)root["ema"]!;
            var wm = ((TorchTensor)model["pos_embed"]!).ToFloat32();
            var we = ((TorchTensor)ema["pos_embed"]!).ToFloat32();
            Assert.Equal(we.Select(v => v * 0.5f), wm);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Rewrites a torch zip state dict as {'model': copy over new storages, 'ema': original, 'opt': …, 'args': Namespace}.</summary>
    private static byte[] TrainingCheckpoint(string stateDictPath)
    {
        var members = new List<(string Name, byte[] Data)>();
        using (var zip = ZipFile.OpenRead(stateDictPath))
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                members.Add((e.FullName, ms.ToArray()));
            }
        string prefix = members[0].Name[..members[0].Name.IndexOf('/')];
        var pickle = members.Single(m => m.Name == prefix + "/data.pkl").Data;
        Assert.Equal(0x80, pickle[0]); // PROTO 2 … STOP
        Assert.Equal((byte)'.', pickle[^1]);
        var body = pickle.AsSpan(2, pickle.Length - 3).ToArray();

        var p = new List<byte> { 0x80, 2, (byte)'}', (byte)'(' }; // PROTO 2, EMPTY_DICT, MARK
        Unicode(p, "model");
        p.AddRange(RenameStorages(body, key => "m" + key));
        Unicode(p, "ema");
        p.AddRange(body);
        Unicode(p, "opt");                                      // {'state': {}, 'param_groups': [{'lr': 0.0001}]}
        p.Add((byte)'}');
        p.Add((byte)'(');
        Unicode(p, "state");
        p.Add((byte)'}');
        Unicode(p, "param_groups");
        p.AddRange([(byte)']', (byte)'(', (byte)'}']);
        Unicode(p, "lr");
        p.Add((byte)'G');
        var lr = new byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(lr, 1e-4);
        p.AddRange(lr);
        p.AddRange([(byte)'s', (byte)'e', (byte)'u']);          // SETITEM, APPENDS, SETITEMS
        Unicode(p, "args");                                     // argparse.Namespace(model='DiT-XL/2')
        p.AddRange(Encoding.ASCII.GetBytes("cargparse\nNamespace\n"));
        p.AddRange([(byte)')', 0x81, (byte)'}']);               // EMPTY_TUPLE, NEWOBJ, EMPTY_DICT
        Unicode(p, "model");
        Unicode(p, "DiT-XL/2");
        p.AddRange([(byte)'s', (byte)'b', (byte)'u', (byte)'.']); // SETITEM, BUILD, SETITEMS, STOP

        var result = new List<(string Name, byte[] Data)>();
        foreach (var (name, data) in members)
        {
            result.Add(name == prefix + "/data.pkl" ? (name, p.ToArray()) : (name, data));
            if (name.StartsWith(prefix + "/data/", StringComparison.Ordinal))
            {
                var halved = MemoryMarshal.Cast<byte, float>(data.AsSpan()).ToArray().Select(v => v * 0.5f).ToArray();
                result.Add((prefix + "/data/m" + name[(prefix.Length + 6)..], MemoryMarshal.AsBytes(halved.AsSpan()).ToArray()));
            }
        }
        var zipBytes = new MemoryStream();
        using (var zip = new ZipArchive(zipBytes, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in result)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return zipBytes.ToArray();
    }

    private static void Unicode(List<byte> p, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        p.Add((byte)'X');
        var n = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(n, bytes.Length);
        p.AddRange(n);
        p.AddRange(bytes);
    }

    /// <summary>
    /// Walks the opcodes of a torch.save protocol-2 pickle body and renames the storage keys (the all-digit
    /// BINUNICODE strings of the persistent ids; state-dict keys and module names are never all digits).
    /// </summary>
    private static byte[] RenameStorages(byte[] body, Func<string, string> rename)
    {
        var result = new List<byte>(body.Length + 1024);
        int i = 0;
        while (i < body.Length)
        {
            byte op = body[i];
            int argLength = op switch
            {
                (byte)'q' or (byte)'h' or (byte)'K' => 1,                // BINPUT, BINGET, BININT1
                (byte)'r' or (byte)'j' or (byte)'J' => 4,                // LONG_BINPUT, LONG_BINGET, BININT
                (byte)'M' => 2,                                          // BININT2
                (byte)'G' => 8,                                          // BINFLOAT
                (byte)'X' => 4 + BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(i + 1)),
                (byte)'c' => GlobalArgumentLength(body, i + 1),             // GLOBAL "module\nname\n"
                (byte)'(' or (byte)')' or (byte)'}' or (byte)']' or (byte)'t' or (byte)'R' or (byte)'Q' or (byte)'s' or (byte)'u'
                    or (byte)'e' or (byte)'b' or (byte)'N' or 0x85 or 0x86 or 0x87 or 0x88 or 0x89 or 0x81 => 0,
                _ => throw new InvalidDataException($"opcode 0x{op:x2} at {i} is not expected in a torch state dict pickle"),
            };
            if (op == (byte)'X')
            {
                string s = Encoding.UTF8.GetString(body, i + 5, argLength - 4);
                if (s.Length > 0 && s.All(char.IsAsciiDigit))
                {
                    Unicode(result, rename(s));
                    i += 1 + argLength;
                    continue;
                }
            }
            result.AddRange(body.AsSpan(i, 1 + argLength));
            i += 1 + argLength;
        }
        return result.ToArray();
    }

    private static int GlobalArgumentLength(byte[] body, int start)
    {
        int module = Array.IndexOf(body, (byte)'\n', start) - start + 1;
        int name = Array.IndexOf(body, (byte)'\n', start + module) - (start + module) + 1;
        return module + name;
    }

    // ---- strict loading ----

    private sealed class ArrayTensor(string name, long[] shape, float[] values) : StoredTensor(name, shape, DType.Float32)
    {
        public override void CopyValuesTo(Stream destination) => destination.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static Dictionary<string, StoredTensor> StateDict(TorchCheckpoint ckpt)
        => ckpt.StateDict().ToDictionary(kv => kv.Key, kv => (StoredTensor)kv.Value, StringComparer.Ordinal);

    private TensorFileException LoadEdited(string device, Action<Dictionary<string, StoredTensor>> edit)
    {
        using var ckpt = TorchCheckpoint.Open(Checkpoint);
        var dict = StateDict(ckpt);
        edit(dict);
        var e = Assert.Throws<TensorFileException>(() => DyDit.FromStateDict(dict, "edited.pt", Config(), pool[device]).Dispose());
        output.WriteLine(e.Message);
        Assert.Equal("edited.pt", e.FilePath);
        return e;
    }

    public static IEnumerable<object[]> RouterKeys => DeviceCases.Cross(
        ["blocks.2.attn_rate.router.weight", "[3, 64]"],
        ["blocks.0.mlp_rate.router.bias", "[3]"],
        ["blocks.1.token_selection.mlp_head.0.weight", "[4, 64]"],
        ["blocks.1.token_selection.mlp_head.2.bias", "[1]"]);

    [Theory, MemberData(nameof(RouterKeys))]
    public void MissingRouterKeyIsNamed(string device, string key, string shape)
    {
        var e = LoadEdited(device, d => d.Remove(key));
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains(shape, e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void MisshapenRouterNamesBothShapes(string device)
    {
        // a router with H outputs instead of H − 1
        var e = LoadEdited(device, d => d["blocks.1.attn_rate.router.weight"] = new ArrayTensor("blocks.1.attn_rate.router.weight", [4, 64], new float[256]));
        Assert.Contains("'blocks.1.attn_rate.router.weight'", e.Message);
        Assert.Contains("[4, 64]", e.Message);
        Assert.Contains("[3, 64]", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void UnexpectedKeyIsNamed(string device)
    {
        var e = LoadEdited(device, d => d["blocks.3.attn_rate.router.weight"] = new ArrayTensor("blocks.3.attn_rate.router.weight", [3, 64], new float[192]));
        Assert.Contains("unexpected state dict key 'blocks.3.attn_rate.router.weight'", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void PlainDitCheckpointLacksTheRouters(string device)
    {
        var backend = pool[device];
        var ditConfig = DitConfig.FromJson(File.ReadAllText(Fixtures.Path("dit", "dit_tiny.json")));
        var e = Assert.Throws<TensorFileException>(() => DyDit.Load(Fixtures.Path("dit", "dit_tiny.pt"), ditConfig, backend).Dispose());
        output.WriteLine(e.Message);
        Assert.Contains("'blocks.0.attn_rate.router.weight'", e.Message);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void AbsentPosEmbedIsComputed(string device)
    {
        var backend = pool[device];
        using var io = NpzArchive.Open(Fixtures.Path("dydit", "dydit_tiny_io.npz"));
        using var ckpt = TorchCheckpoint.Open(Checkpoint);
        var dict = StateDict(ckpt);
        dict.Remove("pos_embed");
        using var net = DyDit.FromStateDict(dict, "no-pos.pt", Config(), backend);
        using var x = Upload(backend, io["x"]);
        using var r = net.Forward(x, Int64(io["t"]), Int64(io["y"]));
        Compare("out (computed pos_embed)", io["out"].ToFloat32(), r.Output.ToArray(), OutTolerance);
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void InputsAreChecked(string device)
    {
        var backend = pool[device];
        using var net = DyDit.Load(Checkpoint, Config(), backend);
        using var wrongSize = backend.Zeros(1, 4, 16, 16);
        Assert.Throws<ArgumentException>(() => net.Forward(wrongSize, [0], [0]));
        using var x = backend.Zeros(2, 4, 8, 8);
        Assert.Throws<ArgumentException>(() => net.Forward(x, [0], [0, 1]));
        using var odd = backend.Zeros(3, 4, 8, 8);
        Assert.Throws<ArgumentException>(() => net.ForwardWithCfg(odd, [0, 0, 0], [0, 0, 10], 4f));
    }

    // ---- FLOP constants ----

    [Fact]
    public void LossPyConstantsAreTheBlockCostsAt256()
    {
        foreach (var name in new[] { "DiT-S/2", "DiT-B/2", "DiT-XL/2" })
        {
            var (attn, mlp) = DyDitRouting.BlockMultiplyAccumulates(DitConfig.Preset(name, inputSize: 32));
            var (la, lm) = DyDitRouting.LossPyFlops(name);
            Assert.Equal(la, attn / 1e9, 12);
            Assert.Equal(lm, mlp / 1e9, 12);
        }
        Assert.Throws<ArgumentException>(() => DyDitRouting.LossPyFlops("DiT-L/2"));
        // the decision is sigmoid(logit) > 0.5 in float32: positive logits too small to move the sigmoid stay off
        Assert.True(DyDitRouting.Decide(1e-3f));
        Assert.False(DyDitRouting.Decide(0f));
        Assert.False(DyDitRouting.Decide(1e-9f));
        Assert.False(DyDitRouting.Decide(-1e-3f));
    }
}
