using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Inception;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>
/// ADM and pytorch-fid preprocessing. fixtures/inception/inception_io.npz stores only the uint8 inputs
/// (images_299, images_256), no preprocessed network inputs, so the checks are: (1) ADM = TF1 resize fixture
/// followed by (x − 128)/128, bit-exact (README: the TF graph's Sub/Mul is bit-identical to dividing by 128);
/// (2) pytorch-fid = x/255, half-pixel resize, 2x − 1, against the 0..255 half-pixel fixture rescaled — not the
/// same float32 operation order, so within 2e-6 absolute (README gives no figure; resize is linear, the gap is a
/// few float32 ulps of values ≤ 1: measured 3.6e-7); (3) on images_299 both paths reduce to the exact per-pixel maps.
/// </summary>
public sealed class InceptionPreprocessingTests
{
    private const int S = InceptionPreprocessing.ImageSize;

    public static TheoryData<string> Cases299()
    {
        var data = new TheoryData<string>();
        foreach (var c in BilinearResizeTests.Manifest().EnumerateObject())
        {
            var hw = c.Value.GetProperty("output_hw");
            if (hw[0].GetInt32() == S && hw[1].GetInt32() == S && c.Value.GetProperty("input").GetProperty("shape")[3].GetInt32() == 3)
                data.Add(c.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases299))]
    public void AdmIsTf1ResizeThenMinus128Over128(string name)
    {
        using var c = BilinearResizeTests.Case.Load(name);
        var y = c.Expected("y_tf1")!;
        var expected = y.Select(v => (v - 128f) / 128f).ToArray();
        var pre = new InceptionPreprocessing(PreprocessMode.Adm);
        var actual = pre.Apply(c.X, c.N, c.H, c.W);
        Assert.Equal(InceptionPreprocessing.OutputLength(c.N), actual.LongLength);
        BilinearResizeTests.AssertBitExact(expected, actual, name + " adm");
        Assert.All(actual, v => Assert.InRange(v, -1f, 0.9921875f));
        if (c.XBytes != null)
            BilinearResizeTests.AssertBitExact(expected, pre.Apply(c.XBytes, c.N, c.H, c.W), name + " adm from uint8");
    }

    [Theory]
    [MemberData(nameof(Cases299))]
    public void PytorchFidIsDivide255HalfPixelResizeThenTwoXMinusOne(string name)
    {
        using var c = BilinearResizeTests.Case.Load(name);
        var y = c.Expected("y_torch_halfpixel");
        if (y == null && c.H == S && c.W == S) y = c.X; // identity at 299
        if (y == null) return; // no PyTorch result stored for this case (covered by the ADM test)
        var pre = new InceptionPreprocessing(PreprocessMode.PytorchFid);
        var actual = pre.Apply(c.X, c.N, c.H, c.W);
        double maxAbs = 0;
        for (int i = 0; i < y.Length; i++)
            maxAbs = Math.Max(maxAbs, Math.Abs(actual[i] - (2f * (y[i] / 255f) - 1f)));
        Assert.True(maxAbs <= 2e-6, $"{name}: max |Δ| {maxAbs:e3} against 2·(y_torch_halfpixel/255) − 1");
        // A TF1-style resize or ADM's scale would be off by grey levels / 1/128 — far outside the tolerance.
        var adm = new InceptionPreprocessing(PreprocessMode.Adm).Apply(c.X, c.N, c.H, c.W);
        Assert.True(actual.Zip(adm, (a, b) => Math.Abs(a - b)).Max() > 1e-3);
    }

    [Fact]
    public void Images299AreOnlyRescaled()
    {
        using var npz = NpzArchive.Open(Fixtures.Path("inception", "inception_io.npz"));
        var images = npz["images_299"];
        Assert.Equal(DType.UInt8, images.DType);
        Assert.Equal(new long[] { 4, S, S, 3 }, images.Shape);
        var bytes = images.ReadAllBytes();
        Assert.Equal(132600399L, bytes.Sum(b => (long)b)); // manifest inputs.images_299.sum
        var adm = new InceptionPreprocessing(PreprocessMode.Adm).Apply(bytes, 4, S, S);
        var ptfid = new InceptionPreprocessing(PreprocessMode.PytorchFid).Apply(bytes, 4, S, S);
        BilinearResizeTests.AssertBitExact(bytes.Select(b => (b - 128f) / 128f).ToArray(), adm, "adm299");
        BilinearResizeTests.AssertBitExact(bytes.Select(b => 2f * (b / 255f) - 1f).ToArray(), ptfid, "ptfid299");
        Assert.Equal(-1f + 108f / 128f - 0f, adm[0]); // first pixel 108 (manifest inputs.images_299.first)
    }

    [Fact]
    public void Uint8AndFloatInputsAgreeAndPlansAreReused()
    {
        using var npz = NpzArchive.Open(Fixtures.Path("inception", "inception_io.npz"));
        var images = npz["images_256"];
        Assert.Equal(new long[] { 4, 256, 256, 3 }, images.Shape);
        var bytes = images.ReadAllBytes();
        var floats = images.ToFloat32();
        foreach (var mode in new[] { PreprocessMode.Adm, PreprocessMode.PytorchFid })
        {
            var pre = new InceptionPreprocessing(mode);
            var fromBytes = pre.Apply(bytes, 4, 256, 256);
            BilinearResizeTests.AssertBitExact(fromBytes, pre.Apply(floats, 4, 256, 256), mode + " float vs uint8");
            // Another size in between, then the first size again: same bits.
            Assert.Equal(InceptionPreprocessing.OutputLength(1), pre.Apply(bytes.AsSpan(0, 64 * 64 * 3), 1, 64, 64).Length);
            var again = new float[fromBytes.Length];
            pre.Apply(bytes, 4, 256, 256, again);
            BilinearResizeTests.AssertBitExact(fromBytes, again, mode + " repeated");
        }
    }

    [Fact]
    public void RejectsBadArguments()
    {
        var pre = new InceptionPreprocessing(PreprocessMode.Adm);
        Assert.Throws<ArgumentOutOfRangeException>(() => new InceptionPreprocessing((PreprocessMode)7));
        Assert.Throws<ArgumentOutOfRangeException>(() => pre.Apply(new byte[3], 1, 0, 1));
        Assert.Throws<ArgumentException>(() => pre.Apply(new byte[10 * 10 * 3], 2, 10, 10));
        Assert.Throws<ArgumentException>(() => pre.Apply(new byte[10 * 10 * 3], 1, 10, 10, new float[5]));
    }
}
