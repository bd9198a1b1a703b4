using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>Views that repeat storage elements (zero or overlapping strides): bounded, so a tiny file cannot ask for hours of reading.</summary>
public sealed class ViewSizeTests
{
    /// <summary>{key: float tensor on storage '0' of <paramref name="numel"/> elements with the given size and stride}, zip format, or legacy.</summary>
    private static byte[] Checkpoint(string key, int numel, int[] size, int[] stride, bool legacy = false)
    {
        var p = new PickleBuilder().Proto(2).EmptyDict().Str(key)
            .Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(numel).Tuple().Op((byte)'Q')
            .Int(0).Mark();
        foreach (var s in size) p.Int(s);
        p.Tuple().Mark();
        foreach (var s in stride) p.Int(s);
        var pkl = p.Tuple().Op(0x89).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce().Op((byte)'s').Stop().ToArray();
        var data = new byte[numel * 4];
        for (int i = 0; i < numel; i++) BitConverter.TryWriteBytes(data.AsSpan(4 * i), i + 1f);
        if (!legacy)
            return CheckpointFiles.Zip(("archive/data.pkl", pkl), ("archive/data/0", data), ("archive/version", "3\n"u8.ToArray()));
        var keys = new PickleBuilder().Proto(2).Mark().Str("0").Op((byte)'l').Stop().ToArray();
        return [.. CheckpointFiles.LegacyPrefix(), .. pkl, .. keys, .. BitConverter.GetBytes((long)numel), .. data];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AZeroStrideViewFarLargerThanItsStorageIsRefusedNamingTheKey(bool legacy)
    {
        using var tmp = new TempDir();
        var path = tmp.Write("expanded.pt", Checkpoint("blocks.3.mlp.fc1.weight", 4, [100_000, 100_000], [0, 0], legacy));
        var ex = Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(path));
        Assert.Equal(path, ex.FilePath);
        Assert.Contains("'blocks.3.mlp.fc1.weight'", ex.Message);
        Assert.Contains("10000000000 elements", ex.Message);
        Assert.Contains("storage '0'", ex.Message);
    }

    [Fact]
    public void OverlappingStridesBeyondTheCapAreRefused()
    {
        using var tmp = new TempDir();
        // 5000 × 5000 = 25M elements over 5000 stored ones, each row shifted by one element.
        var path = tmp.Write("overlap.pt", Checkpoint("w", 5000, [5000, 5000], [0, 1]));
        Assert.Contains("'w'", Assert.Throws<TensorFileException>(() => TorchCheckpoint.Open(path)).Message);
    }

    [Fact]
    public void AnExpandedViewUnderTheCapLoadsWithRepeatedValues()
    {
        using var tmp = new TempDir();
        var path = tmp.Write("expand.pt", Checkpoint("bias", 3, [1000, 3], [0, 1]));
        using var ckpt = TorchCheckpoint.Open(path);
        var t = ckpt.StateDict()["bias"];
        var values = t.ToFloat32();
        Assert.Equal(3000, values.Length);
        for (int r = 0; r < 1000; r++) Assert.Equal(new[] { 1f, 2f, 3f }, values.AsSpan(3 * r, 3).ToArray());
    }

    [Fact]
    public void AStridedViewNoLargerThanItsStorageIsAlwaysAccepted()
    {
        using var tmp = new TempDir();
        // Every other element of a storage: fewer elements than stored, whatever the size.
        var path = tmp.Write("strided.pt", Checkpoint("w", 8, [4], [2]));
        using var ckpt = TorchCheckpoint.Open(path);
        Assert.Equal(new[] { 1f, 3f, 5f, 7f }, ckpt.StateDict()["w"].ToFloat32());
    }
}
