using System.Security.Cryptography;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Npy;

public sealed class NpzWriterTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-npz-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(string name) => Path.Combine(_dir.FullName, name);

    /// <summary>Deterministic test data: (name, dtype, shape, little-endian bytes).</summary>
    private static List<(string Name, DType DType, long[] Shape, byte[] Bytes)> Arrays(int seed)
    {
        var rng = new Random(seed);
        byte[] Bytes(long n) { var b = new byte[n]; rng.NextBytes(b); return b; }
        var images = Bytes(7 * 8 * 8 * 3);
        var labels = new long[7];
        for (int i = 0; i < 7; i++) labels[i] = rng.NextInt64(-5, 1000);
        var feats = new float[5 * 6];
        for (int i = 0; i < feats.Length; i++) feats[i] = (float)(rng.NextDouble() * 100 - 50);
        var sigma = new double[4 * 4];
        for (int i = 0; i < sigma.Length; i++) sigma[i] = rng.NextDouble();
        var flags = new byte[9];
        for (int i = 0; i < 9; i++) flags[i] = (byte)(rng.Next(2));
        var halves = new Half[6];
        for (int i = 0; i < 6; i++) halves[i] = (Half)(rng.NextDouble() * 4 - 2);
        return
        [
            ("arr_0", DType.UInt8, [7, 8, 8, 3], images),
            ("labels", DType.Int64, [7], System.Runtime.InteropServices.MemoryMarshal.AsBytes(labels.AsSpan()).ToArray()),
            ("pool", DType.Float32, [5, 6], System.Runtime.InteropServices.MemoryMarshal.AsBytes(feats.AsSpan()).ToArray()),
            ("sigma", DType.Float64, [4, 4], System.Runtime.InteropServices.MemoryMarshal.AsBytes(sigma.AsSpan()).ToArray()),
            ("mask", DType.Bool, [9], flags),
            ("half", DType.Float16, [2, 3], System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()).ToArray()),
            ("i8", DType.Int8, [3], [0x80, 0xFF, 0x7F]),
            ("i32", DType.Int32, [2], [1, 0, 0, 0x80, 0xFF, 0xFF, 0xFF, 0x7F]),
            ("scalar", DType.Float64, [], BitConverter.GetBytes(Math.PI)),
            ("empty", DType.Float32, [0, 3], []),
        ];
    }

    private static void WriteAll(string path, List<(string Name, DType DType, long[] Shape, byte[] Bytes)> arrays, int piece = 17)
    {
        using var w = new NpzWriter(path);
        foreach (var (name, dtype, shape, bytes) in arrays)
        {
            w.BeginArray(name, dtype, shape);
            int step = Math.Max(dtype.ItemSize(), piece / dtype.ItemSize() * dtype.ItemSize());
            for (int i = 0; i < bytes.Length; i += step) w.Write(bytes.AsSpan(i, Math.Min(step, bytes.Length - i)));
            w.EndArray();
        }
        w.Complete();
    }

    [Fact]
    public void RoundTripsThroughOurReader()
    {
        var arrays = Arrays(1);
        WriteAll(P("a.npz"), arrays);
        using var npz = NpzArchive.Open(P("a.npz"));
        Assert.Equal(arrays.Select(a => a.Name), npz.Arrays.Select(a => a.Name));
        foreach (var (name, dtype, shape, bytes) in arrays)
        {
            Assert.Equal(dtype, npz[name].DType);
            Assert.Equal(shape, npz[name].Shape);
            Assert.Equal(bytes, npz[name].ReadAllBytes());
            Assert.Equal(0, npz[name].Header.DataOffset % 64);
        }
    }

    [Fact]
    public void SameArraysGiveIdenticalBytes()
    {
        WriteAll(P("a.npz"), Arrays(2), piece: 5);
        WriteAll(P("b.npz"), Arrays(2), piece: 1000);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(P("a.npz"))), SHA256.HashData(File.ReadAllBytes(P("b.npz"))));
    }

    [Fact]
    public void NothingIsLeftBehindWithoutComplete()
    {
        using (var w = new NpzWriter(P("x.npz")))
        {
            w.BeginArray("arr_0", DType.UInt8, 4, 2);
            w.Write(new byte[5]);
            Assert.False(File.Exists(P("x.npz")));
            Assert.Single(_dir.GetFiles()); // the temporary file
        }
        Assert.Empty(_dir.GetFiles());
    }

    [Fact]
    public void WrongByteCountsAreRefused()
    {
        using var w = new NpzWriter(P("y.npz"));
        w.BeginArray("arr_0", DType.Float32, 2, 2);
        w.Write<float>([1, 2, 3]);
        Assert.Throws<InvalidOperationException>(() => w.EndArray());
        Assert.Throws<InvalidOperationException>(() => w.Write<float>([4, 5]));
        Assert.Throws<ArgumentException>(() => w.Write<double>([1]));
    }

    [Fact]
    public void MoreThan65535MembersUseZip64EndRecords()
    {
        const int members = 70_000;
        using (var w = new NpzWriter(P("many.npz")))
        {
            for (int i = 0; i < members; i++) w.WriteArray<int>($"a{i}", DType.Int32, [1], [i]);
            w.Complete();
        }
        using (var npz = NpzArchive.Open(P("many.npz")))
        {
            Assert.Equal(members, npz.Arrays.Count);
            Assert.Equal(BitConverter.GetBytes(69_999), npz["a69999"].ReadAllBytes());
        }
        if (!PythonPeer.Available()) return;
        var stdout = PythonPeer.Run("""
            import sys, numpy as np
            with np.load(sys.argv[1]) as f:
                print(len(f.files), int(f['a69999'][0]), int(f['a12345'][0]))
            """, [P("many.npz")]);
        Assert.Equal("70000 69999 12345", stdout.Trim());
    }

    [Fact]
    public void NumpyLoadsWhatWeWrite()
    {
        if (!PythonPeer.Available()) return;
        var arrays = Arrays(3);
        WriteAll(P("ours.npz"), arrays);
        var stdout = PythonPeer.Run("""
            import sys, json, hashlib, numpy as np
            with np.load(sys.argv[1]) as f:
                out = {}
                for k in f.files:
                    a = f[k]
                    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<'))
                    out[k] = [list(a.shape), a.dtype.name, hashlib.sha256(le.tobytes()).hexdigest()]
            print(json.dumps(out))
            """, [P("ours.npz")]);
        var seen = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(arrays.Select(a => a.Name), seen.EnumerateObject().Select(p => p.Name));
        foreach (var (name, dtype, shape, bytes) in arrays)
        {
            var e = seen.GetProperty(name);
            Assert.Equal(shape, e[0].EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal(dtype.NumpyName(), e[1].GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), e[2].GetString());
        }
    }

    [Fact]
    public void WeReadWhatNumpyWrites()
    {
        if (!PythonPeer.Available()) return;
        var stdout = PythonPeer.Run("""
            import sys, json, hashlib, numpy as np
            rng = np.random.default_rng(7)
            arrays = {
                'arr_0': rng.integers(0, 256, (5, 9, 9, 3), dtype=np.uint8),
                'feats': rng.standard_normal((11, 7)).astype(np.float32),
                'big_endian': rng.standard_normal((3, 4)).astype('>f8'),
                'fortran': np.asfortranarray(rng.standard_normal((4, 3, 2))),
                'labels': rng.integers(-2**62, 2**62, (6,), dtype=np.int64),
                'half': rng.standard_normal((5,)).astype(np.float16),
                'mask': rng.integers(0, 2, (4, 4)).astype(bool),
                'i16be': rng.integers(-300, 300, (5,)).astype('>i2'),
            }
            out = {}
            for name, a in arrays.items():
                out[name] = hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<')).tobytes()).hexdigest()
            np.savez(sys.argv[1], **arrays)
            np.savez_compressed(sys.argv[2], **arrays)
            print(json.dumps(out))
            """, [P("np_stored.npz"), P("np_deflated.npz")]);
        var expected = JsonDocument.Parse(stdout).RootElement;
        foreach (var file in new[] { "np_stored.npz", "np_deflated.npz" })
        {
            using var npz = NpzArchive.Open(P(file));
            Assert.Equal(expected.EnumerateObject().Count(), npz.Arrays.Count);
            foreach (var e in expected.EnumerateObject())
                Assert.True(e.Value.GetString() == npz[e.Name].ValuesSha256(), $"{file}/{e.Name}");
        }
    }
}

/// <summary>Our npy headers are byte-identical to numpy's own (np.lib.format.write_array on the same shapes).</summary>
public sealed class NpyHeaderNumpyTests
{
    [Fact]
    public void HeadersEqualNumpys()
    {
        if (!PythonPeer.Available()) return;
        var shapes = new long[][] { [], [0], [5], [0, 3], [8, 32, 32, 3], [50000, 256, 256, 3], [123456789012, 2], [3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1] };
        var dtypes = new[] { DType.UInt8, DType.Float32, DType.Int64, DType.Bool, DType.Float16 };
        var specs = new List<string>();
        foreach (var s in shapes) foreach (var d in dtypes) specs.Add(NpyHeader.Descr(d) + ":" + string.Join(",", s));
        var stdout = PythonPeer.Run("""
            import sys, io, numpy as np
            for spec in sys.argv[1:]:
                descr, shape = spec.split(':')
                shape = tuple(int(v) for v in shape.split(',')) if shape else ()
                buf = io.BytesIO()
                np.lib.format._write_array_header(buf, {'descr': descr, 'fortran_order': False, 'shape': shape}, None)
                print(buf.getvalue().hex())
            """, specs);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int i = 0;
        foreach (var s in shapes)
            foreach (var d in dtypes)
                Assert.Equal(lines[i++], Convert.ToHexStringLower(NpyHeader.Format(d, s)));
    }
}
