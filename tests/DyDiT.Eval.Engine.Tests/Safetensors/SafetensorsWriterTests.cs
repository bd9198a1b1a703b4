using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Safetensors;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Safetensors;

/// <summary>
/// <see cref="SafetensorsWriter"/> output read by our reader and parsed independently by Python (json + numpy.frombuffer),
/// checking the format's rules: 8-byte little-endian length, JSON header padded to an 8-byte boundary, keys in order,
/// contiguous data offsets covering the whole data section.
/// </summary>
public sealed class SafetensorsWriterTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-stw-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string P(string name) => Path.Combine(_dir.FullName, name);

    private static List<(string Name, long[] Shape, float[] Values)> Tensors(int seed)
    {
        var rng = new Random(seed);
        float[] Values(long n)
        {
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
            return v;
        }
        // deliberately not in sorted order: the file must come out sorted
        return
        [
            ("decoder.conv_out.weight", [3, 8, 3, 3], Values(216)),
            ("decoder.conv_in.bias", [8], Values(8)),
            ("decoder.mid_block.attentions.0.to_q.weight", [8, 8], Values(64)),
            ("a.scalar", [], Values(1)),
            ("b.empty", [0, 2], []),
            ("post_quant_conv.weight", [4, 4, 1, 1], Values(16)),
        ];
    }

    private static string Sha(float[] values) => Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan())));

    private static void Write(string path, List<(string Name, long[] Shape, float[] Values)> tensors, bool metadata = true)
    {
        var w = new SafetensorsWriter();
        if (metadata) w.SetMetadata("format", "pt");
        foreach (var (name, shape, values) in tensors) w.Add(name, values, shape);
        w.Save(path);
    }

    [Fact]
    public void OurReaderGetsBackEveryTensorInSortedOrder()
    {
        var tensors = Tensors(1);
        Write(P("a.safetensors"), tensors);
        using var f = SafetensorsFile.Open(P("a.safetensors"));
        Assert.Equal(tensors.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal), f.Tensors.Select(t => t.Name));
        Assert.Equal("pt", f.Metadata["format"]);
        foreach (var (name, shape, values) in tensors)
        {
            Assert.Equal(shape, f[name].Shape);
            Assert.Equal(DType.Float32, f[name].DType);
            Assert.Equal(Sha(values), f[name].ValuesSha256());
        }
    }

    [Fact]
    public void SameTensorsGiveIdenticalBytesWhateverTheAddOrder()
    {
        var tensors = Tensors(2);
        Write(P("b1.safetensors"), tensors);
        Write(P("b2.safetensors"), Enumerable.Reverse(tensors).ToList());
        Assert.Equal(File.ReadAllBytes(P("b1.safetensors")), File.ReadAllBytes(P("b2.safetensors")));
        Assert.Equal(2, _dir.GetFiles().Length);
    }

    [Fact]
    public void BadInputIsRefused()
    {
        var w = new SafetensorsWriter();
        Assert.Throws<ArgumentException>(() => w.Add("__metadata__", new float[1]));
        Assert.Throws<ArgumentException>(() => w.Add("x", new float[3], 2, 2));
        w.Add("x", new float[4], 2, 2);
        Assert.Throws<ArgumentException>(() => w.Add("x", new float[4], 4));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PythonParsesHeaderAndValues(bool metadata)
    {
        if (!PythonPeer.Available()) return;
        var tensors = Tensors(3);
        Write(P("c.safetensors"), tensors, metadata);
        var stdout = PythonPeer.Run("""
            import sys, json, hashlib, numpy as np
            raw = open(sys.argv[1], 'rb').read()
            n = int.from_bytes(raw[:8], 'little')
            text = raw[8:8 + n].decode('utf-8')
            header = json.loads(text)
            data = raw[8 + n:]
            keys = [k for k in header if k != '__metadata__']
            tensors = {}
            for k in keys:
                e = header[k]
                b, end = e['data_offsets']
                a = np.frombuffer(data[b:end], dtype='<f4').reshape(e['shape'])
                tensors[k] = [e['dtype'], e['shape'], [b, end], hashlib.sha256(a.tobytes()).hexdigest()]
            print(json.dumps({'header_len': n, 'padded_with': text[len(text.rstrip(' ')):], 'first': list(header)[0],
                              'metadata': header.get('__metadata__'), 'keys': keys, 'data_len': len(data), 'tensors': tensors}))
            """, [P("c.safetensors")]);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(0, (8 + r.GetProperty("header_len").GetInt64()) % 8);
        Assert.True(r.GetProperty("padded_with").GetString()!.All(c => c == ' '));
        if (metadata)
        {
            Assert.Equal("__metadata__", r.GetProperty("first").GetString());
            Assert.Equal("pt", r.GetProperty("metadata").GetProperty("format").GetString());
        }
        else Assert.Equal(JsonValueKind.Null, r.GetProperty("metadata").ValueKind);
        var keys = r.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToList();
        Assert.Equal(tensors.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal), keys);
        long next = 0;
        foreach (var key in keys)
        {
            var e = r.GetProperty("tensors").GetProperty(key);
            var (_, shape, values) = tensors.Single(t => t.Name == key);
            Assert.Equal("F32", e[0].GetString());
            Assert.Equal(shape, e[1].EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal(next, e[2][0].GetInt64()); // contiguous, in key order
            next = e[2][1].GetInt64();
            Assert.Equal(Sha(values), e[3].GetString());
        }
        Assert.Equal(next, r.GetProperty("data_len").GetInt64());
    }
}
