using System.Xml.Linq;
using DyDiT.Eval.Evaluation.Reports;
using Xunit;

namespace DyDiT.Eval.Evaluation.Tests.Reports;

public sealed class SvgChartTests
{
    public static TheoryData<double, double> Ranges() => new()
    {
        { 0, 1 }, { 2.07, 2.27 }, { 0, 118.64 }, { 69.5, 118.64 }, { 0.0004, 0.0031 }, { -3, 7 }, { 5, 5 }, { 0, 0 }, { 1234, 98765 },
    };

    [Theory]
    [MemberData(nameof(Ranges))]
    public void AxesCoverTheDataWithNiceDistinctTicks(double low, double high)
    {
        var axis = NiceAxis.Covering(low, high);
        Assert.True(axis.Min <= low && axis.Max >= high, $"{axis} does not cover [{low}, {high}]");
        double mantissa = axis.Step / Math.Pow(10, Math.Floor(Math.Log10(axis.Step)));
        Assert.Contains(Math.Round(mantissa, 9), new[] { 1.0, 2.0, 5.0 });
        var ticks = axis.Ticks;
        Assert.InRange(ticks.Count, 3, 12);
        var labels = ticks.Select(axis.Label).ToArray();
        Assert.Equal(labels.Length, labels.Distinct().Count());
        Assert.DoesNotContain(labels, l => l.StartsWith("-0") && l.Trim('-', '0', '.').Length == 0);
        foreach (var (t, l) in ticks.Zip(labels)) Assert.Equal(t, double.Parse(l, System.Globalization.CultureInfo.InvariantCulture), axis.Step * 1e-6);
    }

    [Fact]
    public void LabelsWithMarkupStayTextInWellFormedXml()
    {
        const string label = "a<b & \"c\" 'd' \u0001";
        var svg = SvgChart.Scatter("t & <t>", "x", "y", [(label, 1.0, 2.0)], standalone: true);
        var doc = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        var point = doc.Descendants(ns + "g").Single(g => (string?)g.Attribute("class") == "point");
        Assert.Equal("a<b & \"c\" 'd' \uFFFD", (string?)point.Attribute("data-label"));
        Assert.Equal("t & <t>", doc.Root!.Element(ns + "title")!.Value);
    }

    [Fact]
    public void SignificantDigitsAreFixedPoint()
    {
        Assert.Equal("0.3939", SvgChart.Significant(0.39393, 4));
        Assert.Equal("12.31", SvgChart.Significant(12.3077, 4));
        Assert.Equal("1477", SvgChart.Significant(1476.92, 4));
        Assert.Equal("123457", SvgChart.Significant(123456.7, 4));
        Assert.Equal("0", SvgChart.Significant(0, 4));
    }
}
