using System.CommandLine;
using System.Text.Json;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Evaluation.Metrics;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval evaluate --ref R --sample S [--inception W] [--json OUT] [--split-size 5000] [--pr-distances fp16|float32]</c>:
/// ADM's five result lines (Inception Score, FID, sFID, Precision, Recall) from image batches, features or statistics files.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var reference = new Option<string>("--ref")
        {
            Description = "Reference batch: ADM's reference .npz (arr_0 images + mu, sigma, mu_s, sigma_s), an image batch, features (pool [N,D], optional spatial, logits) or statistics",
            Required = true,
        };
        var sample = new Option<string>("--sample") { Description = "Sample batch: image batch (arr_0 uint8 [N,H,W,3]), features or statistics, as --ref", Required = true };
        var json = new Option<string?>("--json") { Description = "Also write {inception_score, fid, sfid, precision, recall, n_ref, n_sample} to this file" };
        var splitSize = new Option<int>("--split-size")
        {
            Description = "Inception Score split size (ADM: 5000; a short last split counts like a full one)",
            DefaultValueFactory = _ => InceptionScore.DefaultSplitSize,
        };
        var distances = new Option<string>("--pr-distances")
        {
            Description = "Precision/recall distance arithmetic: fp16 reproduces ADM's TensorFlow float16 (default), float32 is exact float32",
            DefaultValueFactory = _ => "fp16",
        };
        distances.AcceptOnlyFromAmong("fp16", "float32");
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores)" };
        var device = DeviceOptions.DeviceOption();
        var precision = DeviceOptions.PrecisionOption(DeviceOptions.FeaturesPrecision);
        var noCache = new Option<bool>("--no-cache") { Description = "Do not read or write the reference-feature cache ($DYDIT_CACHE, default ~/.cache/dydit-eval)" };
        var inception = new InceptionOptions();
        var command = new Command("evaluate",
            "Compute FID, sFID, Inception Score, precision and recall the way ADM's evaluator does, from image batches (with --inception), features or statistics. " +
            "A file holding both statistics and features uses the statistics for FID/sFID (as ADM does) and the features for P/R and IS. " +
            "A metric whose inputs are missing is reported as unavailable with the reason.")
        {
            reference, sample, json, splitSize, distances, threads, device, precision, noCache,
        };
        inception.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            int split = parse.GetValue(splitSize);
            if (split <= 0) throw new UsageException("--split-size must be positive");
            var options = new EvaluationOptions(split, parse.GetValue(distances) == "float32" ? DistanceMode.Float32 : DistanceMode.Fp16);
            return Run(parse.GetValue(reference)!, parse.GetValue(sample)!, parse.GetValue(json), options, parse.GetValue(threads), parse.GetValue(device)!, parse.GetValue(precision),
                parse.GetValue(inception.Weights), parse.GetValue(inception.Preprocess)!, parse.GetValue(inception.Batch), !parse.GetValue(noCache));
        }));
        return command;
    }

    private static int Run(string referencePath, string samplePath, string? jsonPath, EvaluationOptions options, int threads, string device, string? precision,
        string? weights, string preprocess, int batch, bool useCache)
    {
        if (jsonPath != null) PathArguments.OutputFile(jsonPath, "--json");
        using var cpu = DeviceOptions.Create(device, threads, precision, DeviceOptions.FeaturesPrecision);
        Func<string, Evaluation.Inception.InceptionFeatures>? sampleFeatures = null, referenceFeatures = null;
        if (weights != null)
        {
            sampleFeatures = InceptionOptions.Extractor(weights, cpu, InceptionOptions.Mode(preprocess), batch);
            referenceFeatures = useCache ? InceptionOptions.Cached(sampleFeatures, weights, preprocess, Reference.FeatureCache.Default()) : sampleFeatures;
        }
        Console.Error.WriteLine("computing/reading reference batch statistics...");
        var reference = MetricInput.Load(referencePath, referenceFeatures);
        Console.Error.WriteLine("computing/reading sample batch statistics...");
        var sample = MetricInput.Load(samplePath, sampleFeatures);
        var report = Compute(reference, sample, options, cpu);
        foreach (var line in Lines(report)) Console.WriteLine(line);
        if (jsonPath != null)
            PathArguments.Writing(jsonPath, () =>
            {
                WriteJson(jsonPath, report);
                return 0;
            });
        return ExitCodes.Ok;
    }

    /// <summary>ADM's evaluation under the step-by-step progress view; its warnings go to stderr.</summary>
    internal static EvaluationReport Compute(MetricInput reference, MetricInput sample, EvaluationOptions options, IBackend cpu)
    {
        EvaluationReport? report = null;
        Progress.Stepwise(steps =>
        {
            report = AdmEvaluation.Run(reference, sample, options, cpu, status: steps.Start,
                prProgress: new Reporter(p => steps.Report(p.PairsDone, p.PairsTotal)));
            steps.Finish();
        });
        foreach (var w in report!.Warnings) Console.Error.WriteLine("warning: " + w);
        return report;
    }

    /// <summary>ADM's five result lines, in its order and Python's float format.</summary>
    internal static string[] Lines(EvaluationReport r) =>
    [
        Line("Inception Score", r.InceptionScore), Line("FID", r.Fid), Line("sFID", r.Sfid), Line("Precision", r.Precision), Line("Recall", r.Recall),
    ];

    private static string Line(string name, MetricValue m) =>
        m.Value is double v ? $"{name}: {PythonFloat.Repr(v)}" : $"{name}: n/a ({m.Unavailable})";

    internal static void WriteJson(string path, EvaluationReport r)
    {
        var full = Path.GetFullPath(path);
        var tmp = full + $".tmp-{Guid.NewGuid():N}";
        try
        {
            using (var fs = File.Create(tmp))
            using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                Number(w, "inception_score", r.InceptionScore.Value);
                Number(w, "fid", r.Fid.Value);
                Number(w, "sfid", r.Sfid.Value);
                Number(w, "precision", r.Precision.Value);
                Number(w, "recall", r.Recall.Value);
                Number(w, "n_ref", r.ReferenceCount);
                Number(w, "n_sample", r.SampleCount);
                w.WriteEndObject();
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    private static void Number(Utf8JsonWriter w, string name, double? v)
    {
        if (v is double d && double.IsFinite(d)) w.WriteNumber(name, d);
        else w.WriteNull(name);
    }

    private sealed class Reporter(Action<PrecisionRecallProgress> report) : IProgress<PrecisionRecallProgress>
    {
        public void Report(PrecisionRecallProgress value) => report(value);
    }
}
