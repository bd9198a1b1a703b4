using System.Globalization;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// An axis range with "nice" ticks (steps of 1, 2 or 5 × 10^k, ends on whole steps), so a reader can interpolate
/// between labels: Heckbert's nice-numbers rule. <see cref="Decimals"/> is just enough to tell the ticks apart, and
/// labels are formatted invariantly with exactly that many decimals, so the same data always gives the same text.
/// </summary>
internal readonly record struct NiceAxis(double Min, double Max, double Step)
{
    /// <summary>Decimals that show the step exactly (0 for steps ≥ 1).</summary>
    public int Decimals => Math.Max(0, -(int)Math.Floor(Math.Log10(Step) + 1e-9));

    /// <summary>The tick values from <see cref="Min"/> to <see cref="Max"/>.</summary>
    public IReadOnlyList<double> Ticks
    {
        get
        {
            int count = (int)Math.Round((Max - Min) / Step);
            var ticks = new double[count + 1];
            for (int i = 0; i <= count; i++)
            {
                double v = Min + i * Step;
                ticks[i] = Math.Abs(v) < Step * 1e-9 ? 0 : v; // no "-0.0" label
            }
            return ticks;
        }
    }

    public string Label(double value) => value.ToString("F" + Decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>
    /// A nice axis covering [<paramref name="low"/>, <paramref name="high"/>] with about <paramref name="ticks"/> ticks.
    /// A single value gets a range around it (±10 %, or ±1 around 0) so it sits mid-axis instead of on a zero-width scale.
    /// </summary>
    public static NiceAxis Covering(double low, double high, int ticks = 5)
    {
        if (!double.IsFinite(low) || !double.IsFinite(high)) throw new ArgumentException($"axis range [{low}, {high}] is not finite");
        if (high < low) (low, high) = (high, low);
        if (high - low <= Math.Max(Math.Abs(low), Math.Abs(high)) * 1e-12)
        {
            double pad = low == 0 ? 1 : Math.Abs(low) * 0.1;
            low -= pad;
            high += pad;
        }
        double range = Nice(high - low, round: false);
        double step = Nice(range / Math.Max(1, ticks - 1), round: true);
        // the tolerance keeps 0.30000000000000004 / 0.1 from adding a whole empty step
        return new NiceAxis(Math.Floor(low / step + 1e-9) * step, Math.Ceiling(high / step - 1e-9) * step, step);
    }

    /// <summary>The nice number near <paramref name="x"/>: rounded to the closest of 1, 2, 5, 10 (× 10^k), or the next one up.</summary>
    internal static double Nice(double x, bool round)
    {
        double exponent = Math.Floor(Math.Log10(x));
        double fraction = x / Math.Pow(10, exponent);
        double nice = round
            ? fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
            : fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
        return nice * Math.Pow(10, exponent);
    }
}
