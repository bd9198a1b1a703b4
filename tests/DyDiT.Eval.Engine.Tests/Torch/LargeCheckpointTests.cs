using System.Security.Cryptography;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Formats.Zip;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>
/// A DiT-XL/2-sized checkpoint must load without a second copy in memory: the storage is memory-mapped and
/// read in bounded chunks. A 1.2 GB torch-zip file is written here (the official 2.7 GB one cannot be downloaded)
/// and its tensor hashed and converted; the managed heap must grow by far less than the file.
/// </summary>
[Trait("Category", "Large"), Collection(AllocationMeasurement.Name)]
public sealed class LargeCheckpointTests
{
    private const int Elements = 300_000_000; // 1.2 GB of float32

    [Fact]
    public void LoadsWithoutASecondCopy()
    {
        var dir = Directory.CreateTempSubdirectory("dydit-bigckpt-");
        try
        {
            var path = Path.Combine(dir.FullName, "big.pt");
            string expectedSha = Write(path);
            Assert.True(new FileInfo(path).Length > (long)Elements * 4);

            long before = GC.GetTotalAllocatedBytes(precise: true);
            using (var ckpt = TorchCheckpoint.Open(path))
            {
                var w = ckpt.StateDict()["weight"];
                Assert.Equal([(long)Elements], w.Shape);
                Assert.Equal(expectedSha, w.ValuesSha256());
                // One slice of it as float32 for a model: only what is asked for is materialised.
                var first = new float[1000];
                Assert.Equal(0.5f, ReadFirst(w, first));
            }
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            Assert.True(allocated < 64L << 20, $"loading a {Elements * 4L >> 20} MiB checkpoint allocated {allocated >> 20} MiB");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static float ReadFirst(TorchTensor t, float[] into)
    {
        // Stream the values and keep only the first bytes: the tensor API never needs the whole storage at once.
        var sink = new FirstBytes(into.Length * 4);
        t.CopyValuesTo(sink);
        Buffer.BlockCopy(sink.Bytes, 0, into, 0, sink.Bytes.Length);
        return into[0];
    }

    private sealed class FirstBytes(int count) : WriteOnlySink
    {
        public byte[] Bytes { get; } = new byte[count];
        private int _have;
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            int n = Math.Min(buffer.Length, Bytes.Length - _have);
            buffer[..n].CopyTo(Bytes.AsSpan(_have));
            _have += n;
        }
    }

    /// <summary>Writes {'weight': float32 tensor [Elements]} as torch.save's zip format; returns the sha256 of the values.</summary>
    private static string Write(string path)
    {
        var pickle = new PickleBuilder().Proto(2).EmptyDict()
            .Str("weight")
            .Global("torch._utils", "_rebuild_tensor_v2")
            .Mark()
                .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(Elements).Tuple().Op((byte)'Q') // BINPERSID
                .Int(0)
                .Int(Elements).Tuple1()
                .Int(1).Tuple1()
                .Op(0x89) // NEWFALSE
                .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce()
            .Op((byte)'s') // SETITEM
            .Stop().ToArray();

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20);
        var zip = new ZipWriter(fs);
        zip.BeginEntry("big/data.pkl");
        zip.Write(pickle);
        zip.EndEntry();
        zip.BeginEntry("big/data/0");
        var chunk = new float[1 << 20];
        for (int i = 0; i < chunk.Length; i++) chunk[i] = 0.5f + (i & 1023);
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.AsSpan());
        for (long done = 0; done < Elements; done += chunk.Length)
        {
            var piece = bytes[..(int)(Math.Min(chunk.Length, Elements - done) * 4)];
            zip.Write(piece);
            sha.AppendData(piece);
        }
        zip.EndEntry();
        zip.BeginEntry("big/version");
        zip.Write("3\n"u8);
        zip.EndEntry();
        zip.Finish();
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}

/// <summary>
/// Tests that measure the process's allocations (<see cref="GC.GetTotalAllocatedBytes(bool)"/> counts every thread)
/// run alone, after the parallel ones: another test class allocating meanwhile would be charged to them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationMeasurement
{
    public const string Name = "allocation measurement";
}
