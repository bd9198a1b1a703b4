using System.CommandLine;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using Spectre.Console;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval inspect FILE [--json]</c>: every array or tensor in a .npy/.npz/.pt/.pth/.bin/.safetensors file
/// with its name, shape, dtype and the SHA-256 of its values (C order, little-endian).
/// </summary>
internal static class InspectCommand
{
    private const long ProgressThresholdBytes = 256L << 20;

    public static Command Create()
    {
        var file = new Argument<string>("FILE")
        {
            Description = "A .npy, .npz, PyTorch checkpoint (.pt/.pth/.bin, zip or legacy format) or .safetensors file",
        };
        var json = new Option<bool>("--json")
        {
            Description = "Print one JSON object {file, format, tensors: [{name, shape, dtype, sha256}]} instead of a table",
        };
        var command = new Command("inspect",
            "Show what a sample batch, reference batch or checkpoint holds before spending GPU hours on it. " +
            "Names are npz member names ('arr_0'), \"\" for a lone .npy, or the '/'-joined key path in a checkpoint " +
            "('ema/blocks.0.attn.qkv.weight'); non-tensor entries are not listed.")
        {
            file, json,
        };
        command.SetAction(parse => CommandRunner.Run(() => Run(parse.GetValue(file)!, parse.GetValue(json))));
        return command;
    }

    private static int Run(string path, bool asJson)
    {
        using var contents = TensorFile.Open(path);
        var rows = new List<(StoredTensor Tensor, string Sha)>();
        long total = contents.Tensors.Sum(t => t.ByteCount);
        if (total >= ProgressThresholdBytes && !Console.IsErrorRedirected)
            Progress.Bytes($"hashing {Path.GetFileName(path)}", total, report =>
            {
                foreach (var t in contents.Tensors) rows.Add((t, t.ValuesSha256(report)));
            });
        else
            foreach (var t in contents.Tensors) rows.Add((t, t.ValuesSha256()));

        if (asJson)
        {
            using var stdout = Console.OpenStandardOutput();
            using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = false }))
            {
                w.WriteStartObject();
                w.WriteString("file", path);
                w.WriteString("format", contents.Format);
                w.WriteStartArray("tensors");
                foreach (var (t, sha) in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("name", t.Name);
                    w.WriteStartArray("shape");
                    foreach (var d in t.Shape) w.WriteNumberValue(d);
                    w.WriteEndArray();
                    w.WriteString("dtype", t.DType.NumpyName());
                    w.WriteString("sha256", sha);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            stdout.WriteByte((byte)'\n');
            return ExitCodes.Ok;
        }

        var table = new Table().Border(TableBorder.Simple)
            .Title($"{Markup.Escape(PrintableText.Escape(path))} ({contents.Format}, {rows.Count} tensor{(rows.Count == 1 ? "" : "s")})");
        table.AddColumn("name").AddColumn("shape").AddColumn("dtype").AddColumn(new TableColumn("MB").RightAligned()).AddColumn("sha256");
        foreach (var (t, sha) in rows)
            table.AddRow(new Text(t.Name == "" ? "(array)" : PrintableText.Escape(t.Name)), new Text("[" + string.Join(", ", t.Shape) + "]"),
                new Text(t.DType.NumpyName()), new Text((t.ByteCount / 1e6).ToString("F2")), new Text(sha));
        AnsiConsole.Write(table);
        return ExitCodes.Ok;
    }
}
