using DyDiT.Eval.Evaluation.Inception;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>
/// The preprocessing as a backend op (IBackend.ResizeBilinear with InceptionPreprocessing.Spec), which the feature
/// extractor runs where the network runs, against the host preprocessing that the resize fixtures check bit for bit
/// (InceptionPreprocessingTests, BilinearResizeTests): equal bits on every test backend, both modes, every size of
/// fixtures/resize (up, down, non-square, same size).
/// </summary>
public sealed class DeviceResizeTests(BackendPool pool) : IClassFixture<BackendPool>
{
    public static IEnumerable<object[]> Cases() => DeviceCases.Over(
        BilinearResizeTests.Manifest().EnumerateObject()
            .Where(c => c.Value.GetProperty("input").GetProperty("shape")[3].GetInt32() == 3)
            .SelectMany(c => new[] { new object[] { c.Name, "adm" }, [c.Name, "pytorch-fid"] }));

    [Theory, MemberData(nameof(Cases))]
    public void BackendResizeEqualsHostPreprocessingBitForBit(string device, string name, string mode)
    {
        var backend = pool[device];
        using var c = BilinearResizeTests.Case.Load(name);
        var pre = new InceptionPreprocessing(mode == "adm" ? PreprocessMode.Adm : PreprocessMode.PytorchFid);
        var expected = pre.Apply(c.X, c.N, c.H, c.W);
        using var x = backend.FromHost(c.X, c.N, c.H, c.W, 3);
        using var y = backend.Empty(c.N, InceptionPreprocessing.ImageSize, InceptionPreprocessing.ImageSize, 3);
        backend.ResizeBilinear(x, pre.Spec(c.H, c.W), y);
        BilinearResizeTests.AssertBitExact(expected, y.ToArray(), $"{name} {mode} on {device}");
    }

    [Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]
    public void TapsThatDoNotFitTheTensorsAreRefused(string device)
    {
        var backend = pool[device];
        var spec = new InceptionPreprocessing(PreprocessMode.Adm).Spec(32, 32);
        using var x = backend.Zeros(1, 32, 40, 3);
        using var y = backend.Zeros(1, 299, 299, 3);
        var e = Assert.Throws<ArgumentException>(() => backend.ResizeBilinear(x, spec, y));
        Assert.Contains("32×32 → 299×299", e.Message);
    }
}
