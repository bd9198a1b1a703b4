using System.Globalization;
using DyDiT.Eval.Evaluation.Metrics;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests;

/// <summary>Our repr against CPython's own repr of the same doubles (bit patterns passed as hex).</summary>
public sealed class PythonFloatTests
{
    [Fact]
    public void MatchesCPython()
    {
        if (!PythonPeer.Available()) return;
        var rng = new Random(5);
        var values = new List<double>
        {
            215.8370361328125, 3.9425574129223264, 6.140433703346162, 0.8265, 0.5309, 1.0, -0.0, 0.0, 1e-05, 0.0001,
            -3.979039320256561e-13, 1e16, 9999999999999998.0, 1.5e16, 123456789012345680.0, 0.1, 100.0, 5e-324,
            double.MaxValue, 2.5, 1e22, 1e-7, 0.30000000000000004, double.NaN, double.PositiveInfinity, double.NegativeInfinity,
        };
        for (int i = 0; i < 300; i++)
            values.Add(BitConverter.Int64BitsToDouble(rng.NextInt64()) is var d && double.IsFinite(d) ? d : rng.NextDouble());
        for (int i = 0; i < 200; i++)
            values.Add(Math.Round(rng.NextDouble() * Math.Pow(10, rng.Next(-8, 20)), rng.Next(0, 6)));
        var hex = values.Select(v => BitConverter.DoubleToInt64Bits(v).ToString("x16", CultureInfo.InvariantCulture)).ToList();
        var stdout = PythonPeer.Run("""
            import sys, struct
            for h in sys.argv[1:]:
                print(repr(struct.unpack('>d', bytes.fromhex(h))[0]))
            """, hex);
        var expected = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(values.Count, expected.Length);
        for (int i = 0; i < values.Count; i++) Assert.Equal(expected[i], PythonFloat.Repr(values[i]));
    }
}
