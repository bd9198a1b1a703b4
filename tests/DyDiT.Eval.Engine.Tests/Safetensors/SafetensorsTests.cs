using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Safetensors;
using DyDiT.Eval.Engine.Tests.Torch;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Safetensors;

public sealed class SafetensorsTests
{
    private const string PythonPath = "/usr/bin/python3";

    /// <summary>A tiny safetensors writer: header JSON (entries in the given order, offsets as given or packed) plus data.</summary>
    private static byte[] Write(IEnumerable<(string Name, string DType, long[] Shape, byte[] Data)> tensors, string? metadataJson = null,
        Func<string, long, long, string>? offsetsOverride = null)
    {
        var parts = new List<string>();
        if (metadataJson is not null) parts.Add($"\"__metadata__\":{metadataJson}");
        var data = new MemoryStream();
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            long begin = data.Length, end = begin + bytes.Length;
            string offsets = offsetsOverride?.Invoke(name, begin, end) ?? $"[{begin},{end}]";
            parts.Add($"{JsonSerializer.Serialize(name)}:{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":{offsets}}}");
            data.Write(bytes);
        }
        return WithHeader("{" + string.Join(",", parts) + "}", data.ToArray());
    }

    private static byte[] WithHeader(string json, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        return [.. len, .. header, .. data];
    }

    private static byte[] Bytes<T>(params T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    public static TheoryData<string, DType> DTypes() => new()
    {
        { "F32", DType.Float32 }, { "F16", DType.Float16 }, { "BF16", DType.BFloat16 }, { "F64", DType.Float64 },
        { "I64", DType.Int64 }, { "I32", DType.Int32 }, { "I16", DType.Int16 }, { "I8", DType.Int8 },
        { "U8", DType.UInt8 }, { "BOOL", DType.Bool },
    };

    [Theory]
    [MemberData(nameof(DTypes))]
    public void RoundTripsEveryDType(string code, DType dtype)
    {
        // Six elements of shape [2,3] with distinct byte patterns; the values below are their float32 meaning.
        var (data, asFloat) = dtype switch
        {
            DType.Float32 => (Bytes(1.5f, -2f, 0f, 3.25f, -0.5f, 1e-3f), new[] { 1.5f, -2f, 0f, 3.25f, -0.5f, 1e-3f }),
            DType.Float16 => (Bytes((Half)1.5f, (Half)(-2f), (Half)0f, (Half)3.25f, (Half)(-0.5f), (Half)65504f), new[] { 1.5f, -2f, 0f, 3.25f, -0.5f, 65504f }),
            DType.BFloat16 => (Bytes<ushort>(0x3fc0, 0xc000, 0x0000, 0x4050, 0xbf00, 0x7f80), new[] { 1.5f, -2f, 0f, 3.25f, -0.5f, float.PositiveInfinity }),
            DType.Float64 => (Bytes(1.5, -2.0, 0.0, 3.25, -0.5, 1e300), new[] { 1.5f, -2f, 0f, 3.25f, -0.5f, float.PositiveInfinity }),
            DType.Int64 => (Bytes(1L, -2L, 0L, long.MaxValue, -5L, 6L), new[] { 1f, -2f, 0f, 9.223372e18f, -5f, 6f }),
            DType.Int32 => (Bytes(1, -2, 0, int.MinValue, -5, 6), new[] { 1f, -2f, 0f, -2147483648f, -5f, 6f }),
            DType.Int16 => (Bytes<short>(1, -2, 0, short.MaxValue, -5, 6), new[] { 1f, -2f, 0f, 32767f, -5f, 6f }),
            DType.Int8 => (Bytes<sbyte>(1, -2, 0, sbyte.MinValue, -5, 6), new[] { 1f, -2f, 0f, -128f, -5f, 6f }),
            DType.UInt8 => (Bytes<byte>(1, 2, 0, 255, 5, 6), new[] { 1f, 2f, 0f, 255f, 5f, 6f }),
            _ => (Bytes<byte>(1, 0, 0, 1, 1, 0), new[] { 1f, 0f, 0f, 1f, 1f, 0f }),
        };
        using var tmp = new TempDir();
        var p = tmp.Write("t.safetensors", Write([("pad", "U8", [3], [9, 9, 9]), ("x", code, [2, 3], data)], "{\"k\":\"v\"}"));
        using var f = SafetensorsFile.Open(p);
        Assert.Equal("v", f.Metadata["k"]);
        var t = f["x"];
        Assert.Equal(dtype, t.DType);
        Assert.Equal(new long[] { 2, 3 }, t.Shape);
        long headerLen = BinaryPrimitives.ReadInt64LittleEndian(File.ReadAllBytes(p));
        Assert.Equal(8 + headerLen + 3, t.DataOffset); // after the 3-byte "pad" tensor
        Assert.Equal(data, t.ReadAllBytes());
        Assert.Equal(asFloat, t.ToFloat32());
        Assert.Equal(new byte[] { 9, 9, 9 }, f["pad"].ReadAllBytes());
        Assert.Equal(["pad", "x"], f.Tensors.Select(x => x.Name));
    }

    [Fact]
    public void NumpyWrittenFileMatchesNumpyHashes()
    {
        using var tmp = new TempDir();
        var p = tmp.Write("py.safetensors", Convert.FromHexString(PythonSafetensorsSample.FileHex));
        AssertHashes(p, JsonDocument.Parse(PythonSafetensorsSample.HashesJson).RootElement);
    }

    [Fact]
    public void LiveNumpyCrossCheckWhenDebianPythonIsPresent()
    {
        // Optional second oracle: regenerate with other random values through the system python + numpy.
        // The committed sample above is the check that always runs; this one needs python3-numpy (CI=true: required).
        if (!DyDiT.Eval.Tests.Common.PythonPeer.Available()) return;
        using var tmp = new TempDir();
        var p = Path.Combine(tmp.Root, "live.safetensors");
        var script = Path.Combine(SourceDir(), "make_safetensors_sample.py");
        if (!File.Exists(script)) return;
        var psi = new ProcessStartInfo(PythonPath, [script, "--out", p]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var proc = Process.Start(psi)!;
        string stdout = proc.StandardOutput.ReadToEnd();
        string stderr = proc.StandardError.ReadToEnd();
        Assert.True(proc.WaitForExit(60_000), "python did not finish");
        Assert.True(proc.ExitCode == 0, stderr);
        AssertHashes(p, JsonDocument.Parse(stdout).RootElement);
    }

    private static string SourceDir([System.Runtime.CompilerServices.CallerFilePath] string file = "") => Path.GetDirectoryName(file)!;

    private static void AssertHashes(string path, JsonElement hashes)
    {
        using var f = SafetensorsFile.Open(path);
        var expected = hashes.EnumerateObject().ToList();
        Assert.Equal(expected.Select(e => e.Name), f.Tensors.Select(t => t.Name));
        foreach (var e in expected) Assert.Equal(e.Value.GetString(), TensorHash.Sha256(f[e.Name]));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(DType.BFloat16, f["w.bf16"].DType);
        // bf16 is the truncated float32 tensor: converting back must agree to bf16 precision.
        var full = f["w.f32"].ToFloat32();
        var bf = f["w.bf16"].ToFloat32();
        for (int i = 0; i < full.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(full[i]) & unchecked((int)0xffff0000), BitConverter.SingleToInt32Bits(bf[i]));
        Assert.Empty(f["s.scalar"].Shape);
        Assert.Equal(0, f["s.empty"].ElementCount);
    }

    public static TheoryData<string, byte[], string> BadFiles()
    {
        byte[] four = Bytes(1f);
        var data = new TheoryData<string, byte[], string>
        {
            { "too short", [1, 2, 3], "too short" },
            { "header length past end", [.. BitConverter.GetBytes(1000UL), .. "{}"u8.ToArray()], "runs past the end" },
            { "header length huge", [.. BitConverter.GetBytes(ulong.MaxValue), .. "{}"u8.ToArray()], "exceeds" },
            { "header length 200MB", [.. BitConverter.GetBytes(200_000_000UL), .. "{}"u8.ToArray()], "exceeds" },
            { "bad JSON", WithHeader("{\"x\":", []), "not valid JSON" },
            { "invalid UTF-8", WithHeader("{\"\u00ff\":1}", []).Select(b => b == 0xc3 ? (byte)0xff : b).ToArray(), "not valid JSON" },
            { "JSON array", WithHeader("[]", []), "not an object" },
            { "unknown dtype", Write([("w", "F8_E4M3", [1], [0])]), "unsupported dtype 'F8_E4M3'" },
            { "missing dtype", WithHeader("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", four), "'dtype'" },
            { "size mismatch", Write([("w", "F32", [2], four)]), "needs 8" },
            { "offsets out of bounds", Write([("w", "F32", [1], four)], offsetsOverride: (_, _, _) => "[4,8]"), "past the 4-byte data section" },
            { "offsets reversed", Write([("w", "F32", [1], four)], offsetsOverride: (_, _, _) => "[4,0]"), "end before" },
            { "negative offset", Write([("w", "F32", [1], four)], offsetsOverride: (_, _, _) => "[-4,0]"), "non-negative" },
            { "negative dim", WithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", []), "non-negative" },
            { "fractional dim", WithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", four), "non-negative integer" },
            { "overlap", Write([("a", "F32", [2], Bytes(1f, 2f)), ("b", "F32", [1], four)], offsetsOverride: (n, b, e) => n == "b" ? "[4,8]" : $"[{b},{e}]"), "overlaps" },
            { "metadata not strings", Write([("w", "F32", [1], four)], "{\"k\":1}"), "__metadata__" },
            { "duplicate name", WithHeader("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", [1, 2]), "twice" },
            { "huge shape", WithHeader("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", []), "too many elements" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFilesRaiseTensorFileExceptionNamingTheFault(string what, byte[] bytes, string fault)
    {
        using var tmp = new TempDir();
        var p = tmp.Write("bad.safetensors", bytes);
        var ex = Assert.Throws<TensorFileException>(() => SafetensorsFile.Open(p));
        Assert.True(ex.Message.Contains(fault, StringComparison.Ordinal), $"{what}: '{ex.Message}' does not mention '{fault}'");
        Assert.Equal(p, ex.FilePath);
    }

    [Fact]
    public void FaultsNameTheTensor()
    {
        using var tmp = new TempDir();
        var p = tmp.Write("bad.safetensors", Write([("ok", "U8", [1], [1]), ("blocks.3.weight", "F32", [3], Bytes(1f))]));
        var ex = Assert.Throws<TensorFileException>(() => SafetensorsFile.Open(p));
        Assert.Contains("tensor 'blocks.3.weight'", ex.Message);
    }

    [Fact]
    public void CorruptedSampleEitherLoadsOrFailsCleanly()
    {
        var original = Convert.FromHexString(PythonSafetensorsSample.FileHex);
        using var tmp = new TempDir();
        var rng = new Random(99);
        int rejected = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            var copy = (byte[])original.Clone();
            int pos = rng.Next(2) == 0 ? rng.Next(Math.Min(copy.Length, 700)) : rng.Next(copy.Length);
            copy[pos] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) copy = copy[..rng.Next(copy.Length)];
            var p = tmp.Write($"c{trial}.safetensors", copy);
            try
            {
                using var f = SafetensorsFile.Open(p);
                foreach (var t in f.Tensors)
                {
                    t.ReadAllBytes();
                    t.ToFloat32();
                }
            }
            catch (TensorFileException)
            {
                rejected++;
            }
        }
        Assert.InRange(rejected, 1, 400);
    }
}
