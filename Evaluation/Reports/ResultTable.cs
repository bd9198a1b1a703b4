using System.Globalization;
using System.Text.Json;
using CsvHelper;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// The machine-readable comparison: <c>results.csv</c> and <c>results.json</c>, one row/object per run with the same
/// fields in the same order (<see cref="Columns"/>). Numbers are written invariantly and round-trip (a double reads
/// back bit for bit); a missing value is an empty CSV cell and a JSON null. A CSV text cell that a spreadsheet would
/// take for a formula is neutralised with a leading single quote (<see cref="NeutraliseFormula"/>); JSON keeps the text.
/// </summary>
internal static class ResultTable
{
    /// <summary>One field of a run's row: its name and its value (string, double?, int, long or bool).</summary>
    internal sealed record Column(string Name, Func<RunResult, object?> Value);

    /// <summary>The fields, in order: the comparison first (issue 8's columns), then the settings that explain it.</summary>
    public static IReadOnlyList<Column> Columns { get; } =
    [
        new("run", r => r.Run),
        new("model", r => r.Summary.Model),
        new("lambda", r => r.Summary.Lambda),
        new("num_samples", r => r.Summary.NumSamples),
        new("gmacs_per_forward", r => r.GmacsPerForward),
        new("gmacs_vs_dit", r => r.GmacsVsDit),
        new("images_per_s", r => r.ImagesPerSecond),
        new("seconds_per_1000", r => r.SecondsPer1000),
        new("fid", r => r.Metrics?.Fid),
        new("sfid", r => r.Metrics?.Sfid),
        new("inception_score", r => r.Metrics?.InceptionScore),
        new("precision", r => r.Metrics?.Precision),
        new("recall", r => r.Metrics?.Recall),
        new("checkpoint", r => r.Summary.Checkpoint),
        new("reference", r => r.Summary.Reference),
        new("cfg_scale", r => r.Summary.CfgScale),
        new("steps", r => r.Summary.Steps),
        new("sampler", r => r.Summary.Sampler),
        new("seed", r => r.Summary.Seed),
        new("labels", r => r.Summary.Labels),
        new("net", r => r.Summary.Net),
        new("run_id", r => r.Summary.RunId),
        new("random_weights", r => r.Summary.RandomWeights),
    ];

    public static void WriteCsv(string path, IReadOnlyList<RunResult> rows) => ReportFiles.Write(path, stream =>
    {
        using var csv = CsvWriter.Create(stream, new CsvWriterOptions { FormatProvider = CultureInfo.InvariantCulture }, leaveOpen: true);
        csv.WriteHeader(Columns.Select(c => c.Name).ToArray());
        foreach (var row in rows)
        {
            foreach (var c in Columns)
            {
                switch (c.Value(row))
                {
                    case null: csv.WriteField((string?)null); break; // an empty cell
                    case string s: csv.WriteField(NeutraliseFormula(s)); break;
                    case bool b: csv.WriteField(b ? "true" : "false"); break; // as in results.json
                    case int i: csv.WriteField(i, default); break;
                    case long l: csv.WriteField(l, default); break;
                    case double d: csv.WriteField(d, default); break; // no format: the shortest text that round-trips
                    case var other: throw new InvalidOperationException($"column {c.Name}: no CSV form for {other.GetType().Name}");
                }
            }
            csv.EndRecord();
        }
        csv.Flush();
    });

    /// <summary>
    /// A text cell a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return) gets a
    /// leading single quote, the OWASP rule against CSV injection: run names, paths and labels come from spec files.
    /// Only text cells: numbers are written as numbers, negative ones included.
    /// </summary>
    internal static string NeutraliseFormula(string text) =>
        text.Length > 0 && text[0] is '=' or '+' or '-' or '@' or '\t' or '\r' ? "'" + text : text;

    public static void WriteJson(string path, IReadOnlyList<RunResult> rows) => ReportFiles.Write(path, stream =>
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteBoolean("random_weights", rows.Any(r => r.Summary.RandomWeights));
        w.WriteStartArray("runs");
        foreach (var row in rows)
        {
            w.WriteStartObject();
            foreach (var c in Columns)
            {
                switch (c.Value(row))
                {
                    case null: w.WriteNull(c.Name); break;
                    case string s: w.WriteString(c.Name, s); break;
                    case bool b: w.WriteBoolean(c.Name, b); break;
                    case int i: w.WriteNumber(c.Name, i); break;
                    case long l: w.WriteNumber(c.Name, l); break;
                    case double d when double.IsFinite(d): w.WriteNumber(c.Name, d); break;
                    case double: w.WriteNull(c.Name); break; // JSON has no NaN; the CSV keeps "NaN"
                    case var other: throw new InvalidOperationException($"column {c.Name}: no JSON form for {other.GetType().Name}");
                }
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        stream.WriteByte((byte)'\n');
    });
}
