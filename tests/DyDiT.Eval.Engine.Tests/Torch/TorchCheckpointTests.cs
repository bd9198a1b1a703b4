using System.Numerics;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>Every checkpoint fixture against checkpoints/manifest.json (expectations come from the manifest only).</summary>
public sealed class TorchCheckpointTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in CheckpointManifest.FileNames) data.Add(f);
        return data;
    }

    [Fact]
    public void ManifestListsBothContainerFormats()
    {
        var formats = CheckpointManifest.FileNames.Select(f => CheckpointManifest.File(f).GetProperty("format").GetString()).ToHashSet();
        Assert.Contains("zip", formats);
        Assert.Contains("legacy", formats);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void FormatMatchesManifest(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        string expected = CheckpointManifest.File(file).GetProperty("format").GetString()!;
        Assert.Equal("torch-" + expected, ckpt.Format);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void TensorNamesEqualManifestTensorEntries(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        var expected = CheckpointManifest.ObjectsFor(file).EnumerateObject()
            .Where(p => CheckpointManifest.IsTensor(p.Value)).Select(p => CheckpointManifest.NameOf(p.Name)).ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, ckpt.Tensors.Select(t => t.Name).ToList());
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryTensorHasManifestLayoutAndValues(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        var byName = ckpt.Tensors.ToDictionary(t => t.Name);
        foreach (var p in CheckpointManifest.ObjectsFor(file).EnumerateObject().Where(p => CheckpointManifest.IsTensor(p.Value)))
        {
            var e = p.Value;
            var t = byName[CheckpointManifest.NameOf(p.Name)];
            string what = $"{file} {p.Name}";
            Assert.True(e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).SequenceEqual(t.Shape), what + " shape");
            Assert.True(e.GetProperty("stride").EnumerateArray().Select(x => x.GetInt64()).SequenceEqual(t.Stride), what + " stride");
            Assert.Equal(e.GetProperty("dtype").GetString(), t.DType.NumpyName());
            Assert.Equal(e.GetProperty("storage_offset").GetInt64(), t.StorageOffset);
            Assert.Equal(e.GetProperty("storage_numel").GetInt64(), t.StorageElementCount);
            Assert.Equal(e.GetProperty("requires_grad").GetBoolean(), t.RequiresGrad);
            Assert.Equal(e.GetProperty("is_parameter").GetBoolean(), t.IsParameter);
            Assert.True(e.GetProperty("sha256_values_le").GetString() == TensorHash.Sha256(t), what + " sha256_values_le");
            Assert.Equal(t.ElementCount * t.DType.ItemSize(), t.ReadAllBytes().Length);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void StorageSharingFollowsStorageGroups(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        var byName = ckpt.Tensors.ToDictionary(t => t.Name);
        var entries = CheckpointManifest.ObjectsFor(file).EnumerateObject().Where(p => CheckpointManifest.IsTensor(p.Value))
            .Select(p => (Tensor: byName[CheckpointManifest.NameOf(p.Name)], Group: p.Value.GetProperty("storage_group").GetInt64(),
                Shares: p.Value.GetProperty("shares_storage_with").EnumerateArray().Select(x => CheckpointManifest.NameOf(x.GetString()!)).ToHashSet()))
            .ToList();
        int sharedPairs = 0;
        foreach (var a in entries)
        {
            foreach (var b in entries)
            {
                if (ReferenceEquals(a.Tensor, b.Tensor)) continue;
                bool same = a.Tensor.StorageKey == b.Tensor.StorageKey;
                Assert.True((a.Group == b.Group) == same, $"{a.Tensor.Name} vs {b.Tensor.Name}: groups {a.Group}/{b.Group}, keys {a.Tensor.StorageKey}/{b.Tensor.StorageKey}");
                Assert.Equal(a.Shares.Contains(b.Tensor.Name), same);
                if (same) sharedPairs++;
            }
        }
        Assert.True(sharedPairs > 0, "the fixtures contain tensors that share a storage");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void ContainersAndPlainValuesMatchManifest(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        int checkedValues = 0;
        foreach (var p in CheckpointManifest.ObjectsFor(file).EnumerateObject())
        {
            var e = p.Value;
            if (CheckpointManifest.IsTensor(e)) continue;
            object? actual = Navigate(ckpt.Root, p.Name);
            string container = e.TryGetProperty("container", out var c) ? c.GetString()! : "";
            switch (container)
            {
                case "dict" or "OrderedDict":
                    var d = Assert.IsType<PyDict>(actual);
                    Assert.Equal(container == "OrderedDict", d.IsOrderedDict);
                    Assert.Equal(e.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToList(), d.Keys.Cast<string>().ToList());
                    break;
                case "argparse.Namespace":
                    var ns = Assert.IsType<PyNamespace>(actual);
                    var fields = e.GetProperty("value").EnumerateObject().ToList();
                    Assert.Equal(fields.Select(f => f.Name).ToList(), ns.Fields.Select(f => f.Key).ToList());
                    foreach (var f in fields) AssertPyEquals(f.Value, ns[f.Name], p.Name + "." + f.Name);
                    break;
                case "tuple":
                    Assert.IsType<PyTuple>(actual);
                    AssertPyEquals(e.GetProperty("value"), actual, p.Name);
                    break;
                case "list":
                    Assert.IsType<List<object?>>(actual);
                    AssertPyEquals(e.GetProperty("value"), actual, p.Name);
                    break;
                case "":
                    string pyType = e.GetProperty("python_type").GetString()!;
                    switch (pyType)
                    {
                        case "int": Assert.IsType<long>(actual); break;
                        case "float": Assert.IsType<double>(actual); break;
                        case "str": Assert.IsType<string>(actual); break;
                        case "bool": Assert.IsType<bool>(actual); break;
                        case "NoneType": Assert.Null(actual); break;
                        default: Assert.Fail($"{p.Name}: unexpected python_type {pyType} in the manifest"); break;
                    }
                    AssertPyEquals(e.GetProperty("value"), actual, p.Name);
                    break;
                default:
                    Assert.Fail($"{p.Name}: unexpected container {container} in the manifest");
                    break;
            }
            checkedValues++;
        }
        Assert.True(checkedValues > 0);
    }

    [Fact]
    public void LargeIntegersAndNonAsciiStringsSurvive()
    {
        // Independent of the exact values: the checkpoint fixtures document global_step > 2^31 and a non-ASCII flag.
        foreach (var file in CheckpointManifest.FileNames.Where(f => f.StartsWith("checkpoint", StringComparison.Ordinal)))
        {
            using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
            var root = Assert.IsType<PyDict>(ckpt.Root);
            Assert.True((long)root["global_step"]! > int.MaxValue);
            var flags = Assert.IsType<PyDict>(root["flags"]);
            Assert.Contains(flags.Values.OfType<string>(), s => s.Any(ch => ch > 127));
            Assert.Contains(flags.Values.OfType<long>(), v => v < 0);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void StateDictPicksTheWeights(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        var weights = ckpt.StateDict();
        var objects = CheckpointManifest.ObjectsFor(file);
        // A checkpoint with an 'ema' entry yields it; a bare state dict yields itself.
        string prefix = objects.TryGetProperty("/ema", out _) ? "/ema/" : "/";
        var expected = objects.EnumerateObject()
            .Where(p => CheckpointManifest.IsTensor(p.Value) && p.Name.StartsWith(prefix, StringComparison.Ordinal) && p.Name.IndexOf('/', prefix.Length) < 0)
            .ToList();
        Assert.Equal(expected.Select(p => p.Name[prefix.Length..]).ToList(), weights.Keys.ToList());
        foreach (var p in expected)
            Assert.Equal(p.Value.GetProperty("sha256_values_le").GetString(), TensorHash.Sha256(weights[p.Name[prefix.Length..]]));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Float32ConversionMatchesRawValues(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        int converted = 0;
        foreach (var t in ckpt.Tensors)
        {
            var f = t.ToFloat32();
            var raw = t.ReadAllBytes();
            Assert.Equal(t.ElementCount, f.Length);
            for (int i = 0; i < f.Length; i++)
            {
                float expected = t.DType switch
                {
                    DType.Float32 => BitConverter.ToSingle(raw, 4 * i),
                    DType.Float16 => (float)BitConverter.ToHalf(raw, 2 * i),
                    DType.BFloat16 => BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(raw, 2 * i) << 16),
                    DType.Float64 => (float)BitConverter.ToDouble(raw, 8 * i),
                    DType.Int64 => BitConverter.ToInt64(raw, 8 * i),
                    DType.Int32 => BitConverter.ToInt32(raw, 4 * i),
                    DType.Int16 => BitConverter.ToInt16(raw, 2 * i),
                    DType.Int8 => (sbyte)raw[i],
                    _ => raw[i],
                };
                Assert.Equal(expected, f[i]);
            }
            converted++;
        }
        Assert.True(converted > 0);
        // The manifest's `first` values pin the conversion of the float types independently of our byte reading.
        var byName = ckpt.Tensors.ToDictionary(t => t.Name);
        foreach (var p in CheckpointManifest.ObjectsFor(file).EnumerateObject().Where(p => CheckpointManifest.IsTensor(p.Value)))
        {
            var t = byName[CheckpointManifest.NameOf(p.Name)];
            if (t.DType is not (DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64)) continue;
            var first = p.Value.GetProperty("first").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
            Assert.Equal(first, t.ToFloat32().Take(first.Length).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void ChunksStartingAnywhereAgreeWithTheWholeRead(string file)
    {
        // CopyValuesTo streams 1 MB chunks; every (start, length) window of a strided view must match the full read.
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        foreach (var t in ckpt.Tensors)
        {
            var all = t.ReadAllBytes();
            int isz = t.DType.ItemSize();
            for (long first = 0; first < t.ElementCount; first++)
            {
                for (int count = 1; count <= Math.Min(7, t.ElementCount - first); count += 3)
                {
                    var part = new byte[count * isz];
                    t.CopyElements(first, count, part);
                    Assert.True(all.AsSpan((int)first * isz, part.Length).SequenceEqual(part), $"{t.Name} [{first}, +{count})");
                }
            }
        }
    }

    [Fact]
    public void CudaTaggedLocationsReadLikeCpuOnes()
    {
        var cuda = CheckpointManifest.FileNames.Where(f => f.Contains("cuda", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(cuda);
        foreach (var file in cuda)
        {
            using var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
            Assert.NotEmpty(ckpt.Tensors);
        }
    }

    [Fact]
    public void TensorsCannotBeReadAfterDispose()
    {
        var file = CheckpointManifest.FileNames.First();
        var ckpt = TorchCheckpoint.Open(Fixtures.Path("checkpoints", file));
        var t = ckpt.Tensors.First(x => x.ElementCount > 0);
        ckpt.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ReadAllBytes());
    }

    internal static object? Navigate(object? root, string manifestPath)
    {
        object? cur = root;
        foreach (var part in manifestPath.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            cur = cur switch
            {
                PyDict d => d[part],
                PyNamespace ns => ns[part],
                IReadOnlyList<object?> l => l[int.Parse(part, System.Globalization.CultureInfo.InvariantCulture)],
                _ => throw new KeyNotFoundException($"cannot step into {cur?.GetType().Name} with '{part}'"),
            };
        }
        return cur;
    }

    internal static void AssertPyEquals(JsonElement expected, object? actual, string what)
    {
        switch (expected.ValueKind)
        {
            case JsonValueKind.Null: Assert.Null(actual); break;
            case JsonValueKind.True: Assert.Equal(true, actual); break;
            case JsonValueKind.False: Assert.Equal(false, actual); break;
            case JsonValueKind.String: Assert.Equal(expected.GetString(), Assert.IsType<string>(actual)); break;
            case JsonValueKind.Number:
                if (actual is double dv) Assert.Equal(expected.GetDouble(), dv);
                else if (actual is BigInteger bi) Assert.Equal(BigInteger.Parse(expected.GetRawText(), System.Globalization.CultureInfo.InvariantCulture), bi);
                else Assert.Equal(expected.GetInt64(), Assert.IsType<long>(actual));
                break;
            case JsonValueKind.Array:
                var list = Assert.IsAssignableFrom<IReadOnlyList<object?>>(actual);
                var items = expected.EnumerateArray().ToList();
                Assert.True(items.Count == list.Count, $"{what}: {items.Count} items expected, {list.Count} found");
                for (int i = 0; i < items.Count; i++) AssertPyEquals(items[i], list[i], $"{what}[{i}]");
                break;
            default:
                Assert.Fail($"{what}: no comparison for {expected.ValueKind}");
                break;
        }
    }
}
