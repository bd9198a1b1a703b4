using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Formats.Zip;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>
/// <see cref="TorchCheckpointWriter"/> output read back three ways: our reader; Python's own zipfile + pickle with a
/// restricted unpickler that maps the torch globals to numpy stand-ins (no torch needed); and torch.load itself when
/// /usr/bin/python3 has torch. Expected values are the arrays handed to the writer (sha256 of their bytes).
/// </summary>
public sealed class TorchCheckpointWriterTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-torchw-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(string name) => Path.Combine(_dir.FullName, name);

    /// <summary>Shapes a state dict meets (4-d conv, 2-d, 1-d, 0-d, empty) with random values and IEEE specials.</summary>
    private static List<(string Name, long[] Shape, float[] Values)> Tensors(int seed)
    {
        var rng = new Random(seed);
        float[] Values(long n)
        {
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 4 - 2);
            return v;
        }
        var specials = Values(8);
        specials[0] = -0f;
        specials[1] = float.PositiveInfinity;
        specials[2] = float.NegativeInfinity;
        specials[3] = float.Epsilon;
        specials[4] = float.MaxValue;
        specials[5] = BitConverter.Int32BitsToSingle(0x7fc00001); // a NaN payload must survive
        return
        [
            ("x_embedder.proj.weight", [5, 4, 2, 2], Values(80)),
            ("x_embedder.proj.bias", [5], Values(5)),
            ("blocks.0.attn.qkv.weight", [300, 7], Values(2100)), // > 255 and > 65535 bytes of data, BININT2 sizes
            ("pos_embed", [1, 16, 5], Values(80)),
            ("special", [8], specials),
            ("scalar", [], Values(1)),
            ("empty", [0, 4], []),
            ("big.rank", [2, 1, 3, 1, 2], Values(12)), // rank > 3: MARK … TUPLE
            ("ünïcode.key", [3], Values(3)),
        ];
    }

    private static string Sha(float[] values) => Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan())));

    private static string Write(string path, List<(string Name, long[] Shape, float[] Values)> tensors)
    {
        var w = new TorchCheckpointWriter();
        foreach (var (name, shape, values) in tensors) w.Add(name, values, shape);
        w.Save(path);
        return path;
    }

    [Fact]
    public void OurReaderGetsBackEveryTensor()
    {
        var tensors = Tensors(1);
        Write(P("a.pt"), tensors);
        using var ckpt = TorchCheckpoint.Open(P("a.pt"));
        Assert.Equal("torch-zip", ckpt.Format);
        Assert.IsType<PyDict>(ckpt.Root);
        var sd = ckpt.StateDict();
        Assert.Equal(tensors.Select(t => t.Name), sd.Keys);
        for (int i = 0; i < tensors.Count; i++)
        {
            var (name, shape, values) = tensors[i];
            var t = sd[name];
            Assert.Equal(shape, t.Shape);
            Assert.Equal(DType.Float32, t.DType);
            Assert.Equal(Sha(values), t.ValuesSha256());
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), t.StorageKey);
            Assert.Equal(0, t.StorageOffset);
            Assert.False(t.RequiresGrad);
        }
        Assert.True(BitConverter.SingleToInt32Bits(sd["special"].ToFloat32()[5]) == 0x7fc00001);
    }

    [Fact]
    public void MembersAreStoredAlignedAndNamedAsTorchDoes()
    {
        Write(P("b.pt"), Tensors(2));
        using var file = MappedFile.Open(P("b.pt"));
        var zip = ZipIndex.Read(file);
        var storages = Enumerable.Range(0, 9).Select(i => $"archive/data/{i}").OrderBy(n => n, StringComparer.Ordinal);
        Assert.Equal(["archive/data.pkl", "archive/byteorder", .. storages, "archive/version"], zip.Names);
        foreach (var name in zip.Names)
        {
            Assert.True(zip.TryGet(name, out var m));
            Assert.Equal(0, m.Method);
            Assert.True(m.DataOffset % TorchCheckpointWriter.DataAlignment == 0, $"{name} data at {m.DataOffset}");
        }
        zip.TryGet("archive/version", out var version);
        Assert.Equal("3\n"u8.ToArray(), file.ReadArray(version.DataOffset, version.Size));
    }

    [Fact]
    public void SameTensorsGiveIdenticalBytes()
    {
        Write(P("c1.pt"), Tensors(3));
        Write(P("c2.pt"), Tensors(3));
        Write(P("c3.pt"), Tensors(4));
        Assert.Equal(File.ReadAllBytes(P("c1.pt")), File.ReadAllBytes(P("c2.pt")));
        Assert.NotEqual(File.ReadAllBytes(P("c1.pt")), File.ReadAllBytes(P("c3.pt")));
        Assert.Equal(3, _dir.GetFiles().Length); // no temporary files left
    }

    [Fact]
    public void BadInputIsRefused()
    {
        var w = new TorchCheckpointWriter();
        Assert.Throws<ArgumentException>(() => w.Add("a", new float[5], 2, 3));
        Assert.Throws<ArgumentException>(() => w.Add("", new float[1]));
        Assert.Throws<ArgumentException>(() => w.Add("n", new float[0], -1, 0));
        w.Add("a", new float[6], 2, 3);
        Assert.Throws<ArgumentException>(() => w.Add("a", new float[6], 6));
        Assert.Equal(1, w.Count);
    }

    // Python's zipfile + a restricted pickle.Unpickler: only the four globals a torch state dict needs are mapped
    // (to numpy stand-ins); persistent ids are resolved from the zip members.
    private const string RestrictedUnpickler = """
        import sys, io, json, hashlib, zipfile, pickle, pickletools, collections
        import numpy as np
        path = sys.argv[1]
        raw = open(path, 'rb').read()
        z = zipfile.ZipFile(path)
        members = {}
        crc_ok = z.testzip() is None
        for i in z.infolist():
            h = i.header_offset
            assert raw[h:h + 4] == b'PK\x03\x04'
            n = int.from_bytes(raw[h + 26:h + 28], 'little'); e = int.from_bytes(raw[h + 28:h + 30], 'little')
            members[i.filename] = [(h + 30 + n + e) % 64, i.compress_type, crc_ok]
        prefix = [n for n in z.namelist() if n.endswith('/data.pkl')][0][:-len('data.pkl')]
        pkl = z.read(prefix + 'data.pkl')
        ops = sorted({op.name for op, arg, pos in pickletools.genops(pkl)})
        seen = set()
        def rebuild(storage, offset, size, stride, requires_grad, hooks):
            assert isinstance(hooks, collections.OrderedDict) and len(hooks) == 0 and requires_grad is False
            itemsize = storage.itemsize
            return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=[s * itemsize for s in stride]).copy()
        class Restricted(pickle.Unpickler):
            def find_class(self, module, name):
                seen.add(module + '.' + name)
                if (module, name) == ('collections', 'OrderedDict'): return collections.OrderedDict
                if (module, name) == ('torch._utils', '_rebuild_tensor_v2'): return rebuild
                if (module, name) == ('torch', 'FloatStorage'): return 'FloatStorage'
                raise pickle.UnpicklingError('global %s.%s is not allowed' % (module, name))
            def persistent_load(self, pid):
                tag, kind, key, location, numel = pid
                assert tag == 'storage' and kind == 'FloatStorage' and location == 'cpu'
                data = z.read(prefix + 'data/' + key)
                assert len(data) == 4 * numel, (key, len(data), numel)
                return np.frombuffer(data, dtype='<f4')
        obj = Restricted(io.BytesIO(pkl)).load()
        print(json.dumps({
            'type': type(obj).__name__, 'prefix': prefix, 'members': members, 'ops': ops, 'globals': sorted(seen),
            'version': z.read(prefix + 'version').decode(), 'byteorder': z.read(prefix + 'byteorder').decode(),
            'tensors': [[k, list(v.shape), v.dtype.str, hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()] for k, v in obj.items()],
        }))
        """;

    [Fact]
    public void PythonPickleWithStandInGlobalsReadsTheSameValues()
    {
        if (!PythonPeer.Available()) return;
        var tensors = Tensors(5);
        Write(P("d.pt"), tensors);
        var r = JsonDocument.Parse(PythonPeer.Run(RestrictedUnpickler, [P("d.pt")])).RootElement;
        Assert.Equal("OrderedDict", r.GetProperty("type").GetString());
        Assert.Equal("archive/", r.GetProperty("prefix").GetString());
        Assert.Equal("3\n", r.GetProperty("version").GetString());
        Assert.Equal("little", r.GetProperty("byteorder").GetString());
        Assert.Equal(["collections.OrderedDict", "torch.FloatStorage", "torch._utils._rebuild_tensor_v2"],
            r.GetProperty("globals").EnumerateArray().Select(g => g.GetString()!));
        // protocol 2 only: nothing a torch 1.x reader would not know
        var ops = r.GetProperty("ops").EnumerateArray().Select(o => o.GetString()!).ToHashSet();
        Assert.Subset(new HashSet<string>
        {
            "PROTO", "GLOBAL", "BINPUT", "BINGET", "EMPTY_TUPLE", "REDUCE", "MARK", "BINUNICODE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
            "BINPERSID", "BININT1", "BININT2", "BININT", "NEWFALSE", "SETITEMS", "SETITEM", "STOP",
        }, ops);
        foreach (var m in r.GetProperty("members").EnumerateObject())
        {
            Assert.Equal(0, m.Value[0].GetInt32()); // data offset % 64
            Assert.Equal(0, m.Value[1].GetInt32()); // stored
            Assert.True(m.Value[2].GetBoolean());   // CRCs check
        }
        var got = r.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(tensors.Count, got.Count);
        for (int i = 0; i < got.Count; i++)
        {
            Assert.Equal(tensors[i].Name, got[i][0].GetString());
            Assert.Equal(tensors[i].Shape, got[i][1].EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal("<f4", got[i][2].GetString());
            Assert.Equal(Sha(tensors[i].Values), got[i][3].GetString());
        }
    }

    [Fact]
    public void MoreThanOneThousandEntriesAreBatchedAsPythonDoes()
    {
        // Python's pickler emits SETITEMS per 1000 items and SETITEM for a lone last one: 1001 entries exercise both.
        var tensors = Enumerable.Range(0, 1001).Select(i => ($"t{i}", new long[] { 1 }, new[] { (float)i })).ToList();
        Write(P("many.pt"), tensors);
        using (var ckpt = TorchCheckpoint.Open(P("many.pt")))
        {
            var sd = ckpt.StateDict();
            Assert.Equal(1001, sd.Count);
            Assert.Equal(1000f, sd["t1000"].ToFloat32()[0]);
        }
        if (!PythonPeer.Available()) return;
        var r = JsonDocument.Parse(PythonPeer.Run(RestrictedUnpickler, [P("many.pt")])).RootElement;
        var got = r.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(tensors.Select(t => t.Item1), got.Select(g => g[0].GetString()!));
        Assert.Contains("SETITEM", r.GetProperty("ops").EnumerateArray().Select(o => o.GetString()));
    }

    [Fact]
    public void TorchLoadGivesEqualTensorsWhenTorchIsInstalled()
    {
        if (!PythonPeer.Available()) return;
        var tensors = Tensors(6);
        Write(P("e.pt"), tensors);
        var stdout = PythonPeer.Run("""
            import sys, json, hashlib
            try:
                import torch
            except ImportError:
                print(json.dumps(None)); sys.exit(0)
            sd = torch.load(sys.argv[1], map_location='cpu')
            print(json.dumps({'type': type(sd).__name__, 'torch': torch.__version__, 'tensors': [
                [k, list(v.shape), str(v.dtype), v.is_contiguous(), v.requires_grad,
                 hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()] for k, v in sd.items()]}))
            """, [P("e.pt")]);
        var r = JsonDocument.Parse(stdout).RootElement;
        if (r.ValueKind == JsonValueKind.Null)
        {
            Console.WriteLine($"skipping torch.load check: torch is not importable by {PythonPeer.Interpreter}");
            return;
        }
        Assert.Equal("OrderedDict", r.GetProperty("type").GetString());
        var got = r.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(tensors.Count, got.Count);
        for (int i = 0; i < got.Count; i++)
        {
            Assert.Equal(tensors[i].Name, got[i][0].GetString());
            Assert.Equal(tensors[i].Shape, got[i][1].EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal("torch.float32", got[i][2].GetString());
            Assert.True(got[i][3].GetBoolean());
            Assert.False(got[i][4].GetBoolean());
            Assert.Equal(Sha(tensors[i].Values), got[i][5].GetString());
        }
    }
}
