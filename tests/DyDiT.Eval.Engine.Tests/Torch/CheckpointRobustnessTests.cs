using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>Corrupted, truncated and hostile checkpoints: only <see cref="TensorFileException"/>, never a hang or another exception.</summary>
public sealed class CheckpointRobustnessTests
{
    public static TheoryData<string> Files() => TorchCheckpointTests.Files();

    /// <summary>Opens and reads everything; returns false when the file was rejected with a TensorFileException.</summary>
    private static bool OpenAndReadAll(string path)
    {
        try
        {
            using var ckpt = TorchCheckpoint.Open(path);
            foreach (var t in ckpt.Tensors)
            {
                if (t.ByteCount > (64 << 20)) continue; // a corrupted stride-0 view may be legal but huge
                t.ReadAllBytes();
                t.ToFloat32();
            }
            try
            {
                ckpt.StateDict();
            }
            catch (TensorFileException)
            {
            }
            return true;
        }
        catch (TensorFileException)
        {
            return false;
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryTruncationIsRejected(string file)
    {
        var bytes = File.ReadAllBytes(Fixtures.Path("checkpoints", file));
        using var tmp = new TempDir();
        var lengths = new SortedSet<int> { 0, 1, 2, 3, 4, 10, 21, 22, 100, bytes.Length - 1, bytes.Length - 2, bytes.Length - 22, bytes.Length - 23 };
        for (int len = 0; len < bytes.Length; len += 37) lengths.Add(len);
        foreach (int len in lengths.Where(l => l >= 0 && l < bytes.Length))
        {
            var p = tmp.Write($"cut{len}.pt", bytes[..len]);
            var ex = Assert.Throws<TensorFileException>(() =>
            {
                using var ckpt = TorchCheckpoint.Open(p);
            });
            Assert.Equal(p, ex.FilePath);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void RandomByteCorruptionEitherLoadsOrFailsCleanly(string file)
    {
        var bytes = File.ReadAllBytes(Fixtures.Path("checkpoints", file));
        using var tmp = new TempDir();
        var rng = new Random(file.Aggregate(17, (h, c) => h * 31 + c));
        int rejected = 0;
        const int Trials = 600;
        for (int trial = 0; trial < Trials; trial++)
        {
            var copy = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++)
            {
                // Half the damage lands in the first 3000 bytes, where the pickles and zip headers live.
                int pos = rng.Next(2) == 0 ? rng.Next(Math.Min(3000, copy.Length)) : rng.Next(copy.Length);
                copy[pos] = rng.Next(3) == 0 ? (byte)(copy[pos] ^ (1 << rng.Next(8))) : (byte)rng.Next(256);
            }
            var p = tmp.Write($"flip{trial}.pt", copy);
            if (!OpenAndReadAll(p)) rejected++;
            File.Delete(p);
        }
        Assert.InRange(rejected, 1, Trials); // corruption is noticed at least sometimes
    }

    [Fact]
    public void MissingStorageRecordIsNamed()
    {
        var file = CheckpointManifest.FileNames.First(f => CheckpointManifest.File(f).GetProperty("format").GetString() == "zip");
        var members = CheckpointFiles.ReadZip(Fixtures.Path("checkpoints", file));
        string victim = members.Select(m => m.Name).First(n => n.Contains("/data/", StringComparison.Ordinal));
        string key = victim[(victim.LastIndexOf('/') + 1)..];
        using var tmp = new TempDir();

        var removed = tmp.Write("removed.pt", CheckpointFiles.Zip([.. members.Where(m => m.Name != victim)]));
        var ex = Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(removed));
        Assert.Contains($"storage '{key}'", ex.Message);
        Assert.Contains(victim, ex.Message);

        var renamed = tmp.Write("renamed.pt", CheckpointFiles.Zip([.. members.Select(m => m.Name == victim ? (m.Name + "_moved", m.Data) : m)]));
        ex = Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(renamed));
        Assert.Contains($"storage '{key}'", ex.Message);

        // A storage record shorter than its tensors need.
        var shortened = tmp.Write("short.pt", CheckpointFiles.Zip([.. members.Select(m => m.Name == victim && m.Data.Length > 0 ? (m.Name, m.Data[..^1]) : m)]));
        ex = Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(shortened));
        Assert.Contains($"storage '{key}'", ex.Message);
    }

    [Fact]
    public void RewrittenZipWithOtherPrefixAndAlignmentStillLoads()
    {
        // The prefix is whatever precedes data.pkl; rewriting also drops torch's 64-byte alignment.
        foreach (var file in CheckpointManifest.FileNames.Where(f => CheckpointManifest.File(f).GetProperty("format").GetString() == "zip"))
        {
            var members = CheckpointFiles.ReadZip(Fixtures.Path("checkpoints", file));
            string prefix = members.Single(m => m.Name.EndsWith("/data.pkl", StringComparison.Ordinal)).Name[..^"data.pkl".Length];
            using var tmp = new TempDir();
            var p = tmp.Write("re.pt", CheckpointFiles.Zip([.. members.Select(m => ("archive/" + m.Name[prefix.Length..], m.Data))]));
            using var original = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
            using var rewritten = TorchCheckpoint.Open(p);
            Assert.Equal(original.Tensors.Select(t => t.Name), rewritten.Tensors.Select(t => t.Name));
            Assert.Equal(original.Tensors.Select(TensorHash.Sha256), rewritten.Tensors.Select(TensorHash.Sha256));
        }
    }

    /// <summary>A zip checkpoint whose object is one float tensor: _rebuild_tensor_v2(storage '0' of 4 floats, offset, (size,), (1,), False, OrderedDict()).</summary>
    private static byte[] OneTensorCheckpoint(int offset, int size, byte[] storageBytes)
    {
        var pkl = new PickleBuilder().Proto(2)
            .Global("torch._utils", "_rebuild_tensor_v2")
            .Mark()
                .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(4).Tuple().Op((byte)'Q')
                .Int(offset).Int(size).Tuple1().Int(1).Tuple1().Op(0x89).Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce().Stop().ToArray();
        return CheckpointFiles.Zip(("archive/data.pkl", pkl), ("archive/data/0", storageBytes), ("archive/version", "3\n"u8.ToArray()));
    }

    [Fact]
    public void TensorViewOutsideItsStorageIsRejected()
    {
        var data = new byte[16];
        BitConverter.TryWriteBytes(data.AsSpan(8), 3.5f);
        BitConverter.TryWriteBytes(data.AsSpan(12), -1f);
        using var tmp = new TempDir();

        var p = tmp.Write("view.pt", OneTensorCheckpoint(2, 3, data));
        var ex = Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(p));
        Assert.Contains("storage '0'", ex.Message);
        Assert.Contains("reaches element 4", ex.Message);

        // One element shorter fits, and reads the right values.
        p = tmp.Write("view_ok.pt", OneTensorCheckpoint(2, 2, data));
        using var ckpt = TorchCheckpoint.Open(p);
        var t = Assert.IsType<TorchTensor>(ckpt.Root);
        Assert.Equal("", t.Name);
        Assert.Equal(new[] { 3.5f, -1f }, t.ToFloat32());
        Assert.Throws<TensorFileException>(() => ckpt.StateDict()); // a bare tensor is not a state dict
    }

    public static TheoryData<string, string> ForbiddenGlobals() => UnpicklerTests.ForbiddenGlobals();

    [Theory]
    [MemberData(nameof(ForbiddenGlobals))]
    public void ForbiddenGlobalInsideACheckpointIsRefused(string module, string name)
    {
        using var tmp = new TempDir();
        var marker = Path.Combine(tmp.Root, "pwned");
        var evil = new PickleBuilder().Proto(2).EmptyDict().Str("model").Global(module, name).Str("touch " + marker).Tuple1().Reduce().Op((byte)'s').Stop().ToArray();
        var evilStack = new PickleBuilder().Proto(4).StackGlobal(module, name).Str("touch " + marker).Tuple1().Reduce().Stop().ToArray();
        var files = new[]
        {
            tmp.Write("zip.pt", CheckpointFiles.Zip(("archive/data.pkl", evil), ("archive/version", "3\n"u8.ToArray()))),
            tmp.Write("zip_stack.pt", CheckpointFiles.Zip(("weird-prefix/data.pkl", evilStack), ("weird-prefix/version", "3\n"u8.ToArray()))),
            tmp.Write("legacy.pt", [.. CheckpointFiles.LegacyPrefix(), .. evil]),
            tmp.Write("legacy_stack.pt", [.. CheckpointFiles.LegacyPrefix(), .. evilStack]),
        };
        foreach (var f in files)
        {
            var ex = Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(f));
            Assert.Contains($"'{module}.{name}'", ex.Message);
            Assert.Equal(f, ex.FilePath);
            Assert.False(File.Exists(marker), $"{f}: the pickle ran its command");
        }
    }

    [Fact]
    public void NonCheckpointsAreRejected()
    {
        using var tmp = new TempDir();
        Assert.Contains("empty", Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(tmp.Write("empty.pt", []))).Message);
        Assert.Contains("not a torch checkpoint", Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(tmp.Write("text.pt", "hello world"u8.ToArray()))).Message);
        // A zip that is not a checkpoint.
        var zip = tmp.Write("other.zip", CheckpointFiles.Zip(("readme.txt", "hi"u8.ToArray())));
        Assert.Contains("data.pkl", Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(zip)).Message);
        // A pickle that is not a legacy checkpoint.
        var pkl = tmp.Write("plain.pkl", new PickleBuilder().Proto(2).Int(5).Stop().ToArray());
        Assert.Contains("magic", Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(pkl)).Message);
    }
}
