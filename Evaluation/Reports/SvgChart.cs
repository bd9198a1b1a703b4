using System.Globalization;
using System.Text;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// Small SVG charts for reports — scatter with labelled points, bars, lines with a legend — with nothing but text:
/// no imaging or plotting library exists in the solution, and SVG both stands alone and inlines into HTML. Output is
/// deterministic: coordinates with two fixed decimals and labels formatted invariantly, so the same runs give the
/// same bytes (reports can be diffed and tested). Elements carry classes (<c>point</c>, <c>bar</c>, <c>series</c>,
/// <c>legend</c>) and <c>data-label</c>s so tools and tests can find them.
/// </summary>
internal sealed class SvgChart
{
    /// <summary>Tableau's ten colours: distinguishable, also in greyscale print.</summary>
    public static IReadOnlyList<string> Palette { get; } =
        ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

    private const int Width = 720, Height = 420;
    private readonly StringBuilder _body = new();
    private readonly string _title;
    private readonly double _left, _right, _top, _bottom; // plot area in pixels
    private NiceAxis _x, _y;

    private SvgChart(string title, double left, double right, double top, double bottom)
    {
        _title = title;
        (_left, _right, _top, _bottom) = (left, Width - right, top, Height - bottom);
    }

    /// <summary>One labelled point per item; axes cover the data with a margin so no point sits on the frame.</summary>
    public static string Scatter(string title, string xLabel, string yLabel, IReadOnlyList<(string Label, double X, double Y)> points, bool standalone)
    {
        if (points.Count == 0) throw new ArgumentException("a scatter plot needs at least one point", nameof(points));
        var chart = new SvgChart(title, left: 72, right: 30, top: 44, bottom: 58);
        chart._x = Padded(points.Min(p => p.X), points.Max(p => p.X));
        chart._y = Padded(points.Min(p => p.Y), points.Max(p => p.Y));
        chart.Axes(xLabel, yLabel);
        var b = chart._body;
        b.Append("<g class=\"points\">\n");
        for (int i = 0; i < points.Count; i++)
        {
            var (label, x, y) = points[i];
            double px = chart.PxX(x), py = chart.PxY(y);
            bool leftSide = px > chart._left + 0.7 * (chart._right - chart._left); // keep labels near the right edge inside
            b.Append($"<g class=\"point\" data-label=\"{Xml(label)}\"><circle cx=\"{F(px)}\" cy=\"{F(py)}\" r=\"5\" fill=\"{Palette[i % Palette.Count]}\" stroke=\"#222\" stroke-width=\"0.8\"/>");
            b.Append($"<text x=\"{F(leftSide ? px - 8 : px + 8)}\" y=\"{F(py - 8)}\" text-anchor=\"{(leftSide ? "end" : "start")}\">{Xml(label)}</text></g>\n");
        }
        b.Append("</g>\n");
        return chart.Finish(standalone);
    }

    /// <summary>One bar per item from zero, its value printed above it and its label below (slanted when crowded).</summary>
    public static string Bars(string title, string yLabel, IReadOnlyList<(string Label, double Value)> bars, bool standalone)
    {
        if (bars.Count == 0) throw new ArgumentException("a bar chart needs at least one bar", nameof(bars));
        double slot = (Width - 72 - 30) / (double)bars.Count;
        bool slanted = bars.Max(b => b.Label.Length) * 6.5 > slot - 6; // long labels are written at 30° and need room below
        var chart = new SvgChart(title, left: 72, right: 30, top: 44, bottom: slanted ? 110 : 40);
        chart._x = new NiceAxis(0, bars.Count, 1);
        chart._y = NiceAxis.Covering(Math.Min(0, bars.Min(b => b.Value)), Math.Max(0, bars.Max(b => b.Value)) * 1.08);
        chart.Axes(xLabel: null, yLabel);
        var sb = chart._body;
        sb.Append("<g class=\"bars\">\n");
        for (int i = 0; i < bars.Count; i++)
        {
            var (label, value) = bars[i];
            double cx = chart._left + (i + 0.5) * slot, w = Math.Min(80, slot * 0.6);
            double y0 = chart.PxY(0), y1 = chart.PxY(value);
            string valueText = Significant(value, 3);
            sb.Append($"<g class=\"bar\" data-label=\"{Xml(label)}\" data-value=\"{valueText}\">");
            sb.Append($"<rect x=\"{F(cx - w / 2)}\" y=\"{F(Math.Min(y0, y1))}\" width=\"{F(w)}\" height=\"{F(Math.Abs(y0 - y1))}\" fill=\"{Palette[i % Palette.Count]}\"/>");
            sb.Append($"<text x=\"{F(cx)}\" y=\"{F(Math.Min(y0, y1) - 5)}\" text-anchor=\"middle\">{valueText}</text>");
            double ly = chart._bottom + 16;
            sb.Append(slanted
                ? $"<text x=\"{F(cx)}\" y=\"{F(ly)}\" text-anchor=\"end\" transform=\"rotate(-30 {F(cx)} {F(ly)})\">{Xml(label)}</text>"
                : $"<text x=\"{F(cx)}\" y=\"{F(ly)}\" text-anchor=\"middle\">{Xml(label)}</text>");
            sb.Append("</g>\n");
        }
        sb.Append("</g>\n");
        return chart.Finish(standalone);
    }

    /// <summary>
    /// One polyline per series over shared axes (<paramref name="yRange"/> fixes the y axis, e.g. [0, 1] for shares),
    /// with a legend to the right naming each series by its colour and dash pattern.
    /// </summary>
    public static string Lines(string title, string xLabel, string yLabel, IReadOnlyList<LineSeries> series, (double Min, double Max)? yRange, bool standalone)
    {
        var drawn = series.Where(s => s.Points.Count > 0).ToArray();
        if (drawn.Length == 0) throw new ArgumentException("a line chart needs at least one non-empty series", nameof(series));
        var chart = new SvgChart(title, left: 72, right: 230, top: 44, bottom: 58);
        var all = drawn.SelectMany(s => s.Points).ToArray();
        chart._x = NiceAxis.Covering(all.Min(p => p.X), all.Max(p => p.X), ticks: 6);
        chart._y = yRange is var (lo, hi) ? NiceAxis.Covering(lo, hi, ticks: 6) : Padded(all.Min(p => p.Y), all.Max(p => p.Y));
        chart.Axes(xLabel, yLabel);
        var b = chart._body;
        b.Append("<g class=\"lines\">\n");
        foreach (var s in drawn)
        {
            b.Append($"<polyline class=\"series\" data-series=\"{Xml(s.Name)}\" fill=\"none\" stroke=\"{s.Colour}\" stroke-width=\"1.8\"");
            if (s.Dash != null) b.Append($" stroke-dasharray=\"{s.Dash}\"");
            b.Append(" points=\"");
            for (int i = 0; i < s.Points.Count; i++)
            {
                if (i > 0) b.Append(' ');
                b.Append(F(chart.PxX(s.Points[i].X))).Append(',').Append(F(chart.PxY(s.Points[i].Y)));
            }
            b.Append("\"/>\n");
        }
        b.Append("</g>\n<g class=\"legend\">\n");
        double lx = chart._right + 16, ly = chart._top + 6;
        for (int i = 0; i < drawn.Length; i++, ly += 18)
        {
            var s = drawn[i];
            b.Append($"<g class=\"legend-entry\" data-label=\"{Xml(s.Name)}\"><line x1=\"{F(lx)}\" y1=\"{F(ly)}\" x2=\"{F(lx + 26)}\" y2=\"{F(ly)}\" stroke=\"{s.Colour}\" stroke-width=\"2\"");
            if (s.Dash != null) b.Append($" stroke-dasharray=\"{s.Dash}\"");
            b.Append($"/><text x=\"{F(lx + 32)}\" y=\"{F(ly + 4)}\">{Xml(s.Name)}</text></g>\n");
        }
        b.Append("</g>\n");
        return chart.Finish(standalone);
    }

    /// <summary>A chart-sized box with a message, for a plot that has no data (so the report says why instead of showing nothing).</summary>
    public static string Message(string title, string message, bool standalone)
    {
        var chart = new SvgChart(title, 20, 20, 44, 20);
        chart._body.Append($"<text class=\"notice\" x=\"{F(Width / 2.0)}\" y=\"{F(Height / 2.0)}\" text-anchor=\"middle\" fill=\"#555\">{Xml(message)}</text>\n");
        return chart.Finish(standalone);
    }

    /// <summary>A line series: display name, colour, optional SVG dash pattern and its (x, y) points.</summary>
    internal sealed record LineSeries(string Name, string Colour, string? Dash, IReadOnlyList<(double X, double Y)> Points);

    private static NiceAxis Padded(double min, double max)
    {
        double pad = (max - min) * 0.08;
        return NiceAxis.Covering(min - pad, max + pad);
    }

    private double PxX(double v) => _left + (v - _x.Min) / (_x.Max - _x.Min) * (_right - _left);

    private double PxY(double v) => _bottom - (v - _y.Min) / (_y.Max - _y.Min) * (_bottom - _top);

    /// <summary>Grid lines, the frame, ticks with labels (x only when <paramref name="xLabel"/> is given) and axis titles.</summary>
    private void Axes(string? xLabel, string yLabel)
    {
        var b = _body;
        b.Append("<g class=\"axes\" stroke-width=\"1\">\n");
        foreach (var t in _y.Ticks)
        {
            double y = PxY(t);
            b.Append($"<line x1=\"{F(_left)}\" y1=\"{F(y)}\" x2=\"{F(_right)}\" y2=\"{F(y)}\" stroke=\"#e4e4e4\"/>");
            b.Append($"<line x1=\"{F(_left - 5)}\" y1=\"{F(y)}\" x2=\"{F(_left)}\" y2=\"{F(y)}\" stroke=\"#333\"/>");
            b.Append($"<text class=\"tick\" x=\"{F(_left - 8)}\" y=\"{F(y + 4)}\" text-anchor=\"end\">{_y.Label(t)}</text>\n");
        }
        if (xLabel != null)
        {
            foreach (var t in _x.Ticks)
            {
                double x = PxX(t);
                b.Append($"<line x1=\"{F(x)}\" y1=\"{F(_top)}\" x2=\"{F(x)}\" y2=\"{F(_bottom)}\" stroke=\"#e4e4e4\"/>");
                b.Append($"<line x1=\"{F(x)}\" y1=\"{F(_bottom)}\" x2=\"{F(x)}\" y2=\"{F(_bottom + 5)}\" stroke=\"#333\"/>");
                b.Append($"<text class=\"tick\" x=\"{F(x)}\" y=\"{F(_bottom + 18)}\" text-anchor=\"middle\">{_x.Label(t)}</text>\n");
            }
            b.Append($"<text class=\"axis-label\" x=\"{F((_left + _right) / 2)}\" y=\"{F(_bottom + 40)}\" text-anchor=\"middle\">{Xml(xLabel)}</text>\n");
        }
        b.Append($"<rect x=\"{F(_left)}\" y=\"{F(_top)}\" width=\"{F(_right - _left)}\" height=\"{F(_bottom - _top)}\" fill=\"none\" stroke=\"#333\"/>\n");
        double my = (_top + _bottom) / 2;
        b.Append($"<text class=\"axis-label\" x=\"{F(18)}\" y=\"{F(my)}\" text-anchor=\"middle\" transform=\"rotate(-90 {F(18)} {F(my)})\">{Xml(yLabel)}</text>\n");
        b.Append("</g>\n");
    }

    private string Finish(bool standalone)
    {
        var svg = new StringBuilder();
        if (standalone) svg.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" ");
        svg.Append("font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\" fill=\"#222\">\n");
        svg.Append($"<title>{Xml(_title)}</title>\n");
        svg.Append($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"#fff\"/>\n");
        svg.Append($"<text class=\"chart-title\" x=\"{F(Width / 2.0)}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{Xml(_title)}</text>\n");
        svg.Append(_body);
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>A pixel coordinate: two fixed decimals, invariant.</summary>
    private static string F(double v) => v.ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>Escapes text for XML content and attribute values (both quote kinds).</summary>
    internal static string Xml(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&apos;"); break;
                // characters XML 1.0 forbids (control codes) cannot be escaped; show them as U+FFFD
                case < ' ' and not ('\t' or '\n' or '\r'): sb.Append('\uFFFD'); break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>A value with <paramref name="digits"/> significant digits as fixed-point text ("0.0123", "12.3", "1234").</summary>
    internal static string Significant(double value, int digits)
    {
        if (!double.IsFinite(value)) return value.ToString(CultureInfo.InvariantCulture);
        if (value == 0) return "0";
        int decimals = Math.Clamp(digits - 1 - (int)Math.Floor(Math.Log10(Math.Abs(value))), 0, 15);
        return value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }
}
