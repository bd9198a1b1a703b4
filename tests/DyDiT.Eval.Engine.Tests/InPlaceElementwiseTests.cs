using DyDiT.Eval.Engine.Backends.Cpu;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>IBackend allows an element-wise destination to be one of its inputs: in place must equal out of place.</summary>
public sealed class InPlaceElementwiseTests : IDisposable
{
    private readonly CpuBackend _cpu = new(threads: 2);

    public void Dispose() => _cpu.Dispose();

    [Theory]
    [InlineData(17)]
    [InlineData(300_001)] // split over threads
    public void InPlaceEqualsOutOfPlace(int length)
    {
        var rng = new Random(5);
        var x = new float[length];
        var y = new float[length];
        for (int i = 0; i < length; i++) (x[i], y[i]) = ((float)(rng.NextDouble() * 12 - 6), (float)(rng.NextDouble() * 2 - 1));

        void Check(string name, Action<DyDiT.Eval.Engine.Tensors.Tensor, DyDiT.Eval.Engine.Tensors.Tensor, DyDiT.Eval.Engine.Tensors.Tensor> op)
        {
            using var tx = _cpu.FromHost(x, length);
            using var ty = _cpu.FromHost(y, length);
            using var separate = _cpu.Zeros(length);
            op(tx, ty, separate);
            op(tx, ty, tx);
            Assert.True(separate.ToArray().AsSpan().SequenceEqual(tx.ToArray()), $"{name} in place differs");
        }

        Check("Add", (a, b, d) => _cpu.Add(a, b, d));
        Check("Multiply", (a, b, d) => _cpu.Multiply(a, b, d));
        Check("ScaleShift", (a, _, d) => _cpu.ScaleShift(a, 1.5f, -0.25f, d));
        Check("Silu", (a, _, d) => _cpu.Silu(a, d));
        Check("GeluTanh", (a, _, d) => _cpu.GeluTanh(a, d));
        Check("SoftmaxLastDim", (a, _, d) => _cpu.SoftmaxLastDim(a, d));
    }
}
