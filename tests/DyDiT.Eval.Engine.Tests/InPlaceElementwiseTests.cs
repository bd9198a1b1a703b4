using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>IBackend allows an element-wise destination to be one of its inputs: in place must equal out of place.</summary>
public sealed class InPlaceElementwiseTests(BackendPool pool) : IClassFixture<BackendPool>
{
    private readonly BackendPool _pool = pool;

    public static IEnumerable<object[]> InPlaceEqualsOutOfPlaceCases => DeviceCases.Cross(
        [17],
        [300_001]); // split over threads

    [Theory, MemberData(nameof(InPlaceEqualsOutOfPlaceCases))]
    public void InPlaceEqualsOutOfPlace(string device, int length)
    {
        var backend = _pool[device];
        var rng = new Random(5);
        var x = new float[length];
        var y = new float[length];
        for (int i = 0; i < length; i++) (x[i], y[i]) = ((float)(rng.NextDouble() * 12 - 6), (float)(rng.NextDouble() * 2 - 1));

        void Check(string name, Action<DyDiT.Eval.Engine.Tensors.Tensor, DyDiT.Eval.Engine.Tensors.Tensor, DyDiT.Eval.Engine.Tensors.Tensor> op)
        {
            using var tx = backend.FromHost(x, length);
            using var ty = backend.FromHost(y, length);
            using var separate = backend.Zeros(length);
            op(tx, ty, separate);
            op(tx, ty, tx);
            Assert.True(separate.ToArray().AsSpan().SequenceEqual(tx.ToArray()), $"{name} in place differs");
        }

        Check("Add", (a, b, d) => backend.Add(a, b, d));
        Check("Multiply", (a, b, d) => backend.Multiply(a, b, d));
        Check("ScaleShift", (a, _, d) => backend.ScaleShift(a, 1.5f, -0.25f, d));
        Check("Silu", (a, _, d) => backend.Silu(a, d));
        Check("GeluTanh", (a, _, d) => backend.GeluTanh(a, d));
        Check("SoftmaxLastDim", (a, _, d) => backend.SoftmaxLastDim(a, d));
    }
}
