using System.Globalization;
using System.Numerics;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

public sealed class UnpicklerTests
{
    private static readonly JsonElement[] Samples = JsonDocument.Parse(PythonPickleSamples.Json).RootElement.EnumerateArray().ToArray();

    public static TheoryData<int> SampleIndices()
    {
        var d = new TheoryData<int>();
        for (int i = 0; i < Samples.Length; i++) d.Add(i);
        return d;
    }

    private static byte[] SampleBytes(int i) => Convert.FromHexString(Samples[i].GetProperty("hex").GetString()!);

    [Theory]
    [MemberData(nameof(SampleIndices))]
    public void CPythonPicklesOfEveryProtocolDecodeToTheSameValues(int i)
    {
        var value = Unpickler.Load(SampleBytes(i), "sample.pkl");
        AssertTagged(Samples[i].GetProperty("value"), value, $"{Samples[i].GetProperty("name")}@{Samples[i].GetProperty("protocol")}");
    }

    [Fact]
    public void SamplesCoverProtocolsZeroToFive()
    {
        var protocols = Samples.Select(s => s.GetProperty("protocol").GetInt32()).ToHashSet();
        Assert.Equal(Enumerable.Range(0, 6), protocols.Order());
    }

    [Fact]
    public void MemoisedObjectsAreShared()
    {
        var s = Samples.First(x => x.GetProperty("name").GetString() == "rich" && x.GetProperty("protocol").GetInt32() == 2);
        var root = Assert.IsType<PyDict>(Unpickler.Load(Convert.FromHexString(s.GetProperty("hex").GetString()!), "s"));
        var shared = Assert.IsType<List<object?>>(root["shared"]);
        Assert.Same(shared[0], shared[1]);
    }

    [Fact]
    public void HandBuiltOpcodesDecode()
    {
        // BINUNICODE8 "hé", LONG1 of 9 bytes (2^64), SHORT_BINBYTES, POP, DUP, POP_MARK, TUPLE2.
        var b = new PickleBuilder().Proto(4).Op(0x95).Raw(BitConverter.GetBytes(40L))
            .Op(0x8d).Raw(BitConverter.GetBytes(3L)).Raw(0x68, 0xc3, 0xa9)
            .Op(0x8a).Raw(9, 0, 0, 0, 0, 0, 0, 0, 0, 1)
            .Mark().Int(5).Int(6).Op((byte)'1')
            .Op((byte)'C').Raw(2, 0xde, 0xad)
            .Op((byte)'2').Op((byte)'0')
            .Op(0x87).Stop().ToArray();
        var t = Assert.IsType<PyTuple>(Unpickler.Load(b, "x"));
        Assert.Equal("hé", t[0]);
        Assert.Equal(BigInteger.One << 64, t[1]);
        Assert.Equal(new byte[] { 0xde, 0xad }, t[2]);
    }

    [Fact]
    public void NegativeLong1AndShortForms()
    {
        var b = new PickleBuilder().Proto(2).Op(0x8a).Raw(1, 0xff).Op(0x8a).Raw(0).Op(0x8a).Raw(8, 0, 0, 0, 0, 0, 0, 0, 0x80).Op(0x87).Stop().ToArray();
        var t = Assert.IsType<PyTuple>(Unpickler.Load(b, "x"));
        Assert.Equal(-1L, t[0]);
        Assert.Equal(0L, t[1]);
        Assert.Equal(long.MinValue, t[2]);
    }

    public static TheoryData<string, string> ForbiddenGlobals() => new()
    {
        { "os", "system" }, { "posix", "system" }, { "nt", "system" }, { "builtins", "eval" }, { "builtins", "exec" },
        { "builtins", "getattr" }, { "subprocess", "Popen" }, { "torch", "load" }, { "torch.storage", "_load_from_bytes" },
        { "torch._tensor", "_rebuild_from_type_v2" }, { "collections", "defaultdict" }, { "numpy.core.multiarray", "_reconstruct" },
        { "copyreg", "_reconstructor" }, { "__builtin__", "eval" },
    };

    [Theory]
    [MemberData(nameof(ForbiddenGlobals))]
    public void ForbiddenGlobalIsRefusedInEveryForm(string module, string name)
    {
        var marker = Path.Combine(Path.GetTempPath(), $"dydit-pwned-{Guid.NewGuid():N}");
        string cmd = "touch " + marker;
        var forms = new (string Form, byte[] Bytes)[]
        {
            ("GLOBAL", new PickleBuilder().Proto(2).Global(module, name).Str(cmd).Tuple1().Reduce().Stop().ToArray()),
            ("STACK_GLOBAL", new PickleBuilder().Proto(4).StackGlobal(module, name).Str(cmd).Tuple1().Reduce().Stop().ToArray()),
            ("INST", new PickleBuilder().Mark().Str(cmd).Op((byte)'i').Raw(System.Text.Encoding.UTF8.GetBytes($"{module}\n{name}\n")).Stop().ToArray()),
            ("nested", new PickleBuilder().Proto(2).EmptyDict().Str("k").Global(module, name).Str(cmd).Tuple1().Reduce().Op((byte)'s').Stop().ToArray()),
        };
        foreach (var (form, bytes) in forms)
        {
            var ex = Assert.Throws<TensorFileException>(() => Unpickler.Load(bytes, "evil.pkl"));
            Assert.Contains($"'{module}.{name}'", ex.Message);
            Assert.Contains("not allowed", ex.Message);
            Assert.False(File.Exists(marker), $"{form}: the pickle ran its command");
        }
    }

    [Fact]
    public void ExtensionRegistryOpcodesAreRefused()
    {
        var ex = Assert.Throws<TensorFileException>(() => Unpickler.Load(new PickleBuilder().Proto(2).Op(0x82).Raw(1).Stop().ToArray(), "x"));
        Assert.Contains("EXT", ex.Message);
    }

    [Fact]
    public void AllowedGlobalsCannotBeCalledWithArbitraryArguments()
    {
        // OrderedDict is allowed, but REDUCE with unexpected arguments is not, and BUILD on a list is not.
        Assert.Throws<TensorFileException>(() => Unpickler.Load(new PickleBuilder().Proto(2).Global("collections", "OrderedDict").Str("x").Int(1).Tuple2().Reduce().Stop().ToArray(), "x"));
        Assert.Throws<TensorFileException>(() => Unpickler.Load(new PickleBuilder().Proto(2).Op((byte)']').EmptyDict().Op((byte)'b').Stop().ToArray(), "x"));
        // A storage class is data for a persistent id, not a callable.
        Assert.Throws<TensorFileException>(() => Unpickler.Load(new PickleBuilder().Proto(2).Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop().ToArray(), "x"));
        // Persistent ids need a checkpoint to resolve them.
        var ex = Assert.Throws<TensorFileException>(() => Unpickler.Load(new PickleBuilder().Proto(2).Str("pid").Op((byte)'Q').Stop().ToArray(), "x"));
        Assert.Contains("persistent id", ex.Message);
    }

    public static TheoryData<string, byte[]> Malformed() => new()
    {
        { "empty", [] },
        { "no STOP", new PickleBuilder().Proto(2).Int(1).ToArray() },
        { "LONG4 absurd size", new PickleBuilder().Proto(2).Op(0x8b).Raw(0xff, 0xff, 0xff, 0x7f).Stop().ToArray() },
        { "LONG4 negative size", new PickleBuilder().Proto(2).Op(0x8b).Raw(0xff, 0xff, 0xff, 0xff).Stop().ToArray() },
        { "BINUNICODE past end", new PickleBuilder().Proto(2).Op((byte)'X').Raw(0xff, 0xff, 0xff, 0xff, (byte)'a').Stop().ToArray() },
        { "BINUNICODE8 huge", new PickleBuilder().Proto(4).Op(0x8d).Raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff).Stop().ToArray() },
        { "BINBYTES past end", new PickleBuilder().Proto(3).Op((byte)'B').Raw(0x10, 0, 0, 0, 1, 2).Stop().ToArray() },
        { "invalid UTF-8", new PickleBuilder().Proto(2).Op((byte)'X').Raw(2, 0, 0, 0, 0xc3, 0x28).Stop().ToArray() },
        { "memo miss", new PickleBuilder().Proto(2).Op((byte)'h').Raw(3).Stop().ToArray() },
        { "stack underflow", new PickleBuilder().Proto(2).Op((byte)'R').Stop().ToArray() },
        { "STOP on empty stack", new PickleBuilder().Proto(2).Stop().ToArray() },
        { "POP_MARK without MARK", new PickleBuilder().Proto(2).Op((byte)'1').Stop().ToArray() },
        { "APPEND to a dict", new PickleBuilder().Proto(2).EmptyDict().Int(1).Op((byte)'a').Stop().ToArray() },
        { "SETITEM on a list", new PickleBuilder().Proto(2).Op((byte)']').Int(1).Int(2).Op((byte)'s').Stop().ToArray() },
        { "unhashable key", new PickleBuilder().Proto(2).EmptyDict().Op((byte)']').Int(2).Op((byte)'s').Stop().ToArray() },
        { "SETITEMS odd", new PickleBuilder().Proto(2).EmptyDict().Mark().Int(1).Op((byte)'u').Stop().ToArray() },
        { "unknown opcode", new PickleBuilder().Proto(2).Op(0xff).Stop().ToArray() },
        { "protocol 6", new PickleBuilder().Proto(6).Int(1).Stop().ToArray() },
        { "FRAME past end", new PickleBuilder().Proto(4).Op(0x95).Raw(0xff, 0, 0, 0, 0, 0, 0, 0).Int(1).Stop().ToArray() },
        { "STACK_GLOBAL of ints", new PickleBuilder().Proto(4).Int(1).Int(2).Op(0x93).Stop().ToArray() },
        { "GLOBAL without newline", new PickleBuilder().Proto(2).Raw((byte)'c', (byte)'o', (byte)'s').ToArray() },
        { "text INT garbage", new PickleBuilder().Raw((byte)'I', (byte)'x', (byte)'\n').Stop().ToArray() },
        { "set opcode", new PickleBuilder().Proto(4).Op(0x8f).Stop().ToArray() },
        { "rebuild_tensor without storage", new PickleBuilder().Proto(2).Global("torch._utils", "_rebuild_tensor_v2").Mark().Int(0).Int(0).EmptyTuple().EmptyTuple().Op(0x89).EmptyDict().Tuple().Reduce().Stop().ToArray() },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedPicklesRaiseTensorFileException(string what, byte[] bytes)
    {
        var ex = Assert.Throws<TensorFileException>(() => Unpickler.Load(bytes, "bad.pkl"));
        Assert.StartsWith("bad.pkl: ", ex.Message);
        Assert.False(string.IsNullOrWhiteSpace(what));
    }

    [Fact]
    public void DeepNestingIsBoundedNotAStackOverflow()
    {
        // 100k nested TUPLE1s: accepted data would recurse on hashing/printing, so the depth is capped.
        var b = new PickleBuilder().Proto(2).Int(1);
        for (int i = 0; i < 100_000; i++) b.Tuple1();
        var ex = Assert.Throws<TensorFileException>(() => Unpickler.Load(b.Stop().ToArray(), "deep.pkl"));
        Assert.Contains("nested", ex.Message);

        var marks = new PickleBuilder().Proto(2);
        for (int i = 0; i < Unpickler.MaxMarks + 1; i++) marks.Mark();
        Assert.Throws<TensorFileException>(() => Unpickler.Load(marks.Stop().ToArray(), "marks.pkl"));
    }

    [Fact]
    public void StackSizeIsBounded()
    {
        var b = new PickleBuilder().Proto(2);
        for (int i = 0; i <= Unpickler.MaxStack; i++) b.Op((byte)'N');
        var ex = Assert.Throws<TensorFileException>(() => Unpickler.Load(b.Stop().ToArray(), "big.pkl"));
        Assert.Contains("stack", ex.Message);
    }

    [Theory]
    [MemberData(nameof(SampleIndices))]
    public void EveryTruncationOfASampleFailsCleanly(int i)
    {
        var bytes = SampleBytes(i);
        for (int len = 0; len < bytes.Length; len++)
            Assert.Throws<TensorFileException>(() => Unpickler.Load(bytes.AsSpan(0, len), "cut.pkl"));
    }

    [Theory]
    [MemberData(nameof(SampleIndices))]
    public void ByteFlipsEitherDecodeOrFailCleanly(int i)
    {
        var bytes = SampleBytes(i);
        var rng = new Random(1234 + i);
        for (int trial = 0; trial < 2000; trial++)
        {
            var copy = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(3);
            for (int f = 0; f < flips; f++) copy[rng.Next(copy.Length)] = (byte)rng.Next(256);
            try
            {
                Unpickler.Load(copy, "flip.pkl");
            }
            catch (TensorFileException)
            {
            }
        }
    }

    private static void AssertTagged(JsonElement tagged, object? actual, string where)
    {
        var p = tagged.EnumerateObject().Single();
        switch (p.Name)
        {
            case "none": Assert.Null(actual); break;
            case "bool": Assert.Equal(p.Value.GetBoolean(), Assert.IsType<bool>(actual)); break;
            case "int":
                var big = BigInteger.Parse(p.Value.GetString()!, CultureInfo.InvariantCulture);
                if (big >= long.MinValue && big <= long.MaxValue) Assert.Equal((long)big, Assert.IsType<long>(actual));
                else Assert.Equal(big, Assert.IsType<BigInteger>(actual));
                break;
            case "float":
                Assert.Equal(ParseHexFloat(p.Value.GetString()!), BitConverter.DoubleToInt64Bits(Assert.IsType<double>(actual)));
                break;
            case "str": Assert.Equal(p.Value.GetString(), Assert.IsType<string>(actual)); break;
            case "bytes": Assert.Equal(Convert.FromHexString(p.Value.GetString()!), Assert.IsType<byte[]>(actual)); break;
            case "tuple" or "list":
                IReadOnlyList<object?> items = p.Name == "tuple" ? Assert.IsType<PyTuple>(actual) : Assert.IsType<List<object?>>(actual);
                var exp = p.Value.EnumerateArray().ToList();
                Assert.True(exp.Count == items.Count, $"{where}: {exp.Count} items expected, got {items.Count}");
                for (int i = 0; i < exp.Count; i++) AssertTagged(exp[i], items[i], $"{where}[{i}]");
                break;
            case "dict" or "odict":
                var d = Assert.IsType<PyDict>(actual);
                Assert.Equal(p.Name == "odict", d.IsOrderedDict);
                var pairs = p.Value.EnumerateArray().ToList();
                Assert.Equal(pairs.Count, d.Count);
                int k = 0;
                foreach (var (key, value) in d)
                {
                    AssertTagged(pairs[k][0], key, $"{where} key {k}");
                    AssertTagged(pairs[k][1], value, $"{where}[{key}]");
                    k++;
                }
                break;
            case "namespace":
                var ns = Assert.IsType<PyNamespace>(actual);
                var fields = p.Value.EnumerateArray().ToList();
                Assert.Equal(fields.Select(f => f[0].GetString()!).ToList(), ns.Fields.Select(f => f.Key).ToList());
                foreach (var f in fields) AssertTagged(f[1], ns[f[0].GetString()!], $"{where}.{f[0]}");
                break;
            default:
                Assert.Fail($"{where}: unknown tag {p.Name}");
                break;
        }
    }

    /// <summary>Python's float.hex() ("0x1.8000000000000p+0", "-0x0.0p+0", "inf") as IEEE bits.</summary>
    private static long ParseHexFloat(string s)
    {
        if (s == "inf") return BitConverter.DoubleToInt64Bits(double.PositiveInfinity);
        if (s == "-inf") return BitConverter.DoubleToInt64Bits(double.NegativeInfinity);
        bool neg = s.StartsWith('-');
        s = s.TrimStart('-')[2..];
        int pIdx = s.IndexOf('p');
        int exp = int.Parse(s[(pIdx + 1)..], CultureInfo.InvariantCulture);
        var mant = s[..pIdx].Split('.');
        long lead = long.Parse(mant[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        string frac = mant.Length > 1 ? mant[1].PadRight(13, '0') : "0000000000000";
        long fracBits = long.Parse(frac, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        double v = Math.ScaleB(lead + fracBits / Math.Pow(2, 52), exp);
        if (neg) v = -v;
        return BitConverter.DoubleToInt64Bits(v);
    }
}
