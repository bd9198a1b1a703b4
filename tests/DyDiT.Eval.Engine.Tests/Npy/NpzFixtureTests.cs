using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Npy;

/// <summary>Every file in fixtures/npz against its manifest entry (exact: sha256 of C-order little-endian values).</summary>
public sealed class NpzFixtureTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Manifest().GetProperty("files").EnumerateObject()) data.Add(f.Name);
        return data;
    }

    private static JsonElement Manifest() =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Path("npz", "manifest.json"))).RootElement;

    private static void AssertArray(JsonElement expected, NpyArray actual)
    {
        Assert.Equal(expected.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), actual.Shape);
        var descr = expected.GetProperty("dtype").GetString()!;
        Assert.Equal(NpyHeader.ParseDescr(descr, "manifest").DType, actual.DType);
        Assert.Equal(descr[0] == '>' && descr != ">u1" && descr != ">i1" && descr != ">b1", actual.Header.BigEndian);
        Assert.Equal(expected.GetProperty("fortran_order").GetBoolean(), actual.Header.FortranOrder);
        Assert.Equal(expected.GetProperty("npy").GetProperty("data_offset").GetInt64(), actual.Header.DataOffset);
        Assert.Equal(expected.GetProperty("sha256_c_le").GetString(), actual.ValuesSha256());

        // The manifest's first values, through the float32 conversion models use.
        var first = expected.GetProperty("first").EnumerateArray().ToList();
        var asFloat = actual.ToFloat32();
        for (int i = 0; i < first.Count; i++)
        {
            float want = first[i].ValueKind switch
            {
                JsonValueKind.String => first[i].GetString() switch { "nan" => float.NaN, "inf" => float.PositiveInfinity, _ => float.NegativeInfinity },
                JsonValueKind.True => 1f,
                JsonValueKind.False => 0f,
                _ => (float)first[i].GetDouble(),
            };
            Assert.Equal(want, asFloat[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void ReadsBitExactly(string file)
    {
        var entry = Manifest().GetProperty("files").GetProperty(file);
        var path = Fixtures.Path("npz", file);
        if (entry.GetProperty("kind").GetString() == "npy")
        {
            using var npy = NpyFile.Open(path);
            Assert.Equal("", npy.Array.Name);
            AssertArray(entry, npy.Array);
            return;
        }
        using var npz = NpzArchive.Open(path);
        var members = entry.GetProperty("members").EnumerateArray().ToList();
        Assert.Equal(members.Count, npz.Arrays.Count);
        for (int i = 0; i < members.Count; i++)
        {
            var memberName = members[i].GetProperty("member").GetString()!;
            Assert.Equal(memberName[..^4], npz.Arrays[i].Name);
            AssertArray(members[i], npz.Arrays[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void RowStreamingEqualsWholeRead(string file)
    {
        using var contents = TensorFile.Open(Fixtures.Path("npz", file));
        foreach (var t in contents.Tensors.OfType<NpyArray>().Where(a => a.Shape.Count > 0))
        {
            var whole = t.ReadAllBytes();
            foreach (int batch in new[] { 1, 3, 5, 64 })
            {
                using var rows = t.OpenRows();
                var buffer = new byte[batch * rows.RowBytes];
                var collected = new MemoryStream();
                int n;
                while ((n = rows.ReadRows(buffer, batch)) > 0)
                {
                    Assert.True(n <= batch);
                    collected.Write(buffer, 0, (int)(n * rows.RowBytes));
                }
                Assert.Equal(rows.Rows, rows.RowsRead);
                Assert.Equal(whole, collected.ToArray());
            }
        }
    }

    [Fact]
    public void MissingArrayNamesIt()
    {
        using var npz = NpzArchive.Open(Fixtures.Path("npz", "savez_images.npz"));
        var e = Assert.Throws<TensorFileException>(() => npz["labels"]);
        Assert.Contains("missing labels", e.Message);
        Assert.Contains("savez_images.npz", e.Message);
    }
}
