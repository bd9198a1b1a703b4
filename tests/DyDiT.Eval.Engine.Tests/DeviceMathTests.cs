using DyDiT.Eval.Engine.Backends.Cuda;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

/// <summary>The kernels' exp and tanh against float64 Math over the ranges the networks use.</summary>
public sealed class DeviceMathTests
{
    // distance in units of the last place of the float32 result nearest to the exact value
    private static double Ulps(double exact, float got)
    {
        float nearest = (float)exact;
        double ulp = Math.Max(MathF.BitIncrement(Math.Abs(nearest)) - Math.Abs(nearest), float.Epsilon);
        return Math.Abs(got - exact) / ulp;
    }

    [Fact]
    public void ExpIsWithinTwoUlpsOfTheExactValue()
    {
        double worst = 0;
        for (int i = 0; i <= 400_000; i++)
        {
            float x = -87f + i * (175.5f / 400_000);
            worst = Math.Max(worst, Ulps(Math.Exp(x), DeviceMath.Exp(x)));
        }
        Assert.True(worst <= 2, $"worst error {worst:F2} ulp");
        Assert.Equal(1f, DeviceMath.Exp(0f));
        Assert.Equal(0f, DeviceMath.Exp(-1000f));
        Assert.Equal(float.PositiveInfinity, DeviceMath.Exp(89f));
        Assert.True(float.IsNaN(DeviceMath.Exp(float.NaN)));
    }

    [Fact]
    public void TanhIsWithinFourUlpsAndOddAndSaturates()
    {
        double worst = 0;
        for (int i = 0; i <= 400_000; i++)
        {
            float x = -10f + i * (20f / 400_000);
            worst = Math.Max(worst, Ulps(Math.Tanh(x), DeviceMath.Tanh(x)));
            Assert.Equal(-DeviceMath.Tanh(x), DeviceMath.Tanh(-x));
        }
        Assert.True(worst <= 4, $"worst error {worst:F2} ulp");
        Assert.Equal(1f, DeviceMath.Tanh(50f));
        Assert.Equal(1e-6f, DeviceMath.Tanh(1e-6f));
    }
}
