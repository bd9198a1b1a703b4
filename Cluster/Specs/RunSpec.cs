using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Workers.Networks.Vae;
using DyDiT.Eval.Workers.Sampling;

namespace DyDiT.Eval.Cluster.Specs;

/// <summary>
/// A sampling run as its JSON file describes it (<c>configs/*.json</c>, keys below in snake_case). Relative paths are
/// relative to the spec file; <see cref="Load"/> resolves them, checks every file exists and rejects unknown keys, so a
/// typo fails before hours of sampling rather than after.
/// <list type="table">
/// <item><c>name</c> (required): a label for people; not part of the run id.</item>
/// <item><c>model</c> (required): a sampling preset (<c>dydit-xl2-256</c>, …), a model preset (<c>DiT-XL/2</c>) or a model JSON.</item>
/// <item><c>checkpoint</c>, <c>vae</c> (required), <c>num_samples</c> (required), <c>output</c> (required, a directory).</item>
/// <item><c>seed</c> 0, <c>cfg_scale</c>, <c>steps</c>, <c>sampler</c>, <c>labels</c> (from the sampling preset, else 1.5, 250,
/// ddpm, uniform), <c>eta</c> 0, <c>net</c>, <c>image_size</c> 256, <c>num_classes</c> 1000, <c>shard_size</c> 1000,
/// <c>batch_size</c> 32.</item>
/// <item>optional: <c>inception</c> (FID Inception weights: per-shard features), <c>reference</c> (ADM reference batch:
/// metrics after the merge), <c>preprocess</c> (adm), <c>lambda</c> (DyDiT's target rate, for the report),
/// <c>demo</c> (random demo weights), <c>description</c>.</item>
/// <item><c>numerics</c>: set by <c>run</c> from its devices and precision (<see cref="RunNumerics"/>, default this machine's CPU);
/// workers with other numerics refuse the run.</item>
/// </list>
/// </summary>
public sealed record RunSpec
{
    private static readonly string[] Keys =
    [
        "name", "description", "model", "net", "checkpoint", "vae", "num_samples", "seed", "cfg_scale", "steps", "sampler", "eta",
        "labels", "image_size", "num_classes", "shard_size", "batch_size", "output", "inception", "reference", "preprocess",
        "lambda", "demo", "numerics",
    ];

    public required string Name { get; init; }

    public string? Description { get; init; }

    /// <summary>A sampling or model preset name, or the absolute path of a model JSON.</summary>
    public required string Model { get; init; }

    public string? Net { get; init; }

    public required string Checkpoint { get; init; }

    public required string Vae { get; init; }

    public required long NumSamples { get; init; }

    public long Seed { get; init; }

    public float CfgScale { get; init; } = 1.5f;

    public int Steps { get; init; } = 250;

    /// <summary>ddpm or ddim.</summary>
    public string Sampler { get; init; } = "ddpm";

    public double Eta { get; init; }

    /// <summary>uniform, balanced, or the absolute path of a label file (one class per sample).</summary>
    public string Labels { get; init; } = "uniform";

    public int ImageSize { get; init; } = 256;

    public int NumClasses { get; init; } = 1000;

    public int ShardSize { get; init; } = 1000;

    public int BatchSize { get; init; } = 32;

    /// <summary>Absolute output directory (shards, merged samples, metrics).</summary>
    public required string Output { get; init; }

    public string? Inception { get; init; }

    public string? Reference { get; init; }

    public string Preprocess { get; init; } = "adm";

    public double? Lambda { get; init; }

    public bool Demo { get; init; }

    /// <summary>The numerics identity the run is generated with (<see cref="RunNumerics"/>); part of the run id.</summary>
    public string Numerics { get; init; } = RunNumerics.Cpu;

    /// <summary>The spec file it was read from (null when rebuilt from a ledger).</summary>
    public string? SourcePath { get; init; }

    /// <summary>
    /// Reads a spec file that holds one run, or several: <c>{"defaults": {…}, "runs": [{…}, …]}</c>, each run's keys
    /// over the shared defaults (a comparison of several models with one VAE, seed, sample count and reference).
    /// </summary>
    public static IReadOnlyList<RunSpec> LoadAll(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"{path}: file not found", path);
        using var doc = ParseFile(full);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("runs", out var runs)) return [Load(full)];
        foreach (var p in root.EnumerateObject())
            if (p.Name is not ("runs" or "defaults" or "description"))
                throw new TensorFileException(full, $"unknown key '{p.Name}' next to 'runs' (known: runs, defaults, description)");
        if (runs.ValueKind != JsonValueKind.Array || runs.GetArrayLength() == 0)
            throw new TensorFileException(full, "key 'runs' must be a non-empty array of run objects");
        var defaults = root.TryGetProperty("defaults", out var d) ? d : default;
        if (defaults.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Object))
            throw new TensorFileException(full, "key 'defaults' must be an object");
        var specs = new List<RunSpec>();
        int index = 0;
        foreach (var run in runs.EnumerateArray())
        {
            if (run.ValueKind != JsonValueKind.Object) throw new TensorFileException(full, $"runs[{index}] must be an object");
            var merged = new Dictionary<string, JsonElement>();
            if (defaults.ValueKind == JsonValueKind.Object)
                foreach (var p in defaults.EnumerateObject()) merged[p.Name] = p.Value;
            foreach (var p in run.EnumerateObject()) merged[p.Name] = p.Value;
            using var one = JsonDocument.Parse(JsonSerializer.Serialize(merged));
            var spec = Parse(one.RootElement, $"{full} runs[{index}]", Path.GetDirectoryName(full)!) with { SourcePath = full };
            spec.CheckFiles($"{full} runs[{index}]");
            specs.Add(spec);
            index++;
        }
        return specs;
    }

    private static JsonDocument ParseFile(string full)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(full), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new TensorFileException(full, $"not valid JSON ({e.Message})", e);
        }
        try
        {
            RejectDuplicateKeys(doc.RootElement, full, "");
            return doc;
        }
        catch
        {
            doc.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A key given twice in one object is refused naming it (JSON readers disagree on which one wins, so the spec
    /// would not say what runs); <paramref name="where"/> is the path of <paramref name="element"/> in the file.
    /// </summary>
    private static void RejectDuplicateKeys(JsonElement element, string file, string where)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in element.EnumerateObject())
            {
                string key = where.Length == 0 ? p.Name : $"{where}.{p.Name}";
                if (!seen.Add(p.Name)) throw new TensorFileException(file, $"key '{key}' is given twice; keep one");
                RejectDuplicateKeys(p.Value, file, key);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var item in element.EnumerateArray()) RejectDuplicateKeys(item, file, $"{where}[{i++}]");
        }
    }

    /// <summary>Reads, resolves and checks a spec file; failures are <see cref="TensorFileException"/> naming the file and key.</summary>
    public static RunSpec Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"{path}: file not found", path);
        using (var doc = ParseFile(full))
        {
            var spec = Parse(doc.RootElement, full, Path.GetDirectoryName(full)!);
            spec.CheckFiles(full);
            return spec;
        }
    }

    /// <summary>Rebuilds a spec from <see cref="ToJson"/> output (paths already absolute), as a worker reads it from the ledger.</summary>
    public static RunSpec FromJson(string json, string source)
    {
        using var doc = JsonDocument.Parse(json);
        var spec = Parse(doc.RootElement, source, "/");
        return spec with { SourcePath = null };
    }

    private static RunSpec Parse(JsonElement root, string file, string baseDirectory)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new TensorFileException(file, "a run spec must be a JSON object");
        foreach (var p in root.EnumerateObject())
            if (!Keys.Contains(p.Name))
                throw new TensorFileException(file, $"unknown key '{p.Name}' (known: {string.Join(", ", Keys)})");

        string Text(string key, bool required = true)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
                return required ? throw new TensorFileException(file, $"key '{key}' is required") : null!;
            if (v.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(v.GetString()))
                throw new TensorFileException(file, $"key '{key}' must be a non-empty string, found {v.ValueKind}");
            return v.GetString()!;
        }
        T? Number<T>(string key, Func<JsonElement, (bool, T)> read) where T : struct
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            var (ok, value) = v.ValueKind == JsonValueKind.Number ? read(v) : (false, default);
            return ok ? value : throw new TensorFileException(file, $"key '{key}' must be a number, found {v}");
        }
        long? Long(string key) => Number(key, v => (v.TryGetInt64(out var x), x));
        int? Int(string key) => Number(key, v => (v.TryGetInt32(out var x), x));
        double? Double(string key) => Number(key, v => (v.TryGetDouble(out var x), x));
        string Resolve(string p) => Path.GetFullPath(Path.Combine(baseDirectory, p));

        string model = Text("model");
        var preset = SamplingPreset.Find(model);
        bool isFile = preset == null && !DiffusionModels.IsPreset(model);
        bool demo = root.TryGetProperty("demo", out var d) && d.ValueKind == JsonValueKind.True;
        string labels = Text("labels", required: false) ?? preset?.Labels ?? "uniform";
        string? net = Text("net", required: false) ?? preset?.Net;
        var spec = new RunSpec
        {
            Name = Text("name"),
            Description = Text("description", required: false),
            Model = isFile ? Resolve(model) : preset?.Model ?? model,
            Net = net,
            Checkpoint = Resolve(Text("checkpoint")),
            Vae = Resolve(Text("vae")),
            NumSamples = Long("num_samples") ?? throw new TensorFileException(file, "key 'num_samples' is required"),
            Seed = Long("seed") ?? 0,
            CfgScale = (float)(Double("cfg_scale") ?? preset?.CfgScale ?? 1.5),
            Steps = Int("steps") ?? preset?.Steps ?? 250,
            Sampler = Text("sampler", required: false) ?? preset?.Sampler ?? "ddpm",
            Eta = Double("eta") ?? 0,
            Labels = labels is "uniform" or "balanced" ? labels : Resolve(labels),
            ImageSize = Int("image_size") ?? preset?.ImageSize ?? 256,
            NumClasses = Int("num_classes") ?? preset?.NumClasses ?? 1000,
            ShardSize = Int("shard_size") ?? 1000,
            BatchSize = Int("batch_size") ?? 32,
            Output = Resolve(Text("output")),
            Inception = Text("inception", required: false) is { } i ? Resolve(i) : null,
            Reference = Text("reference", required: false) is { } r ? Resolve(r) : null,
            Preprocess = Text("preprocess", required: false) ?? "adm",
            Lambda = Double("lambda"),
            Demo = demo,
            // a spec without it is a user's file (run sets it) or a ledger row from before the identity had the kernel family
            Numerics = Text("numerics", required: false) ?? RunNumerics.LegacyCpu,
            SourcePath = file,
        };
        spec.CheckValues(file);
        return spec;
    }

    private void CheckValues(string file)
    {
        void Require(bool ok, string key, string what)
        {
            if (!ok) throw new TensorFileException(file, $"key '{key}' {what}");
        }
        Require(NumSamples > 0 && NumSamples <= 1L << 40, "num_samples", $"must be in [1, 2^40], found {NumSamples}");
        Require(Seed >= 0, "seed", "must be >= 0");
        Require(CfgScale >= 1f, "cfg_scale", "must be >= 1 (1 = no guidance)");
        Require(Steps is >= 2 and <= 1000, "steps", $"must be in [2, 1000], found {Steps}");
        Require(Sampler is "ddpm" or "ddim", "sampler", $"must be ddpm or ddim, found '{Sampler}'");
        Require(Eta >= 0 && (Eta == 0 || Sampler == "ddim"), "eta", "must be >= 0 and applies to the ddim sampler only");
        Require(ImageSize > 0 && ImageSize % 8 == 0, "image_size", "must be a positive multiple of 8");
        Require(NumClasses > 0, "num_classes", "must be positive");
        Require(ShardSize > 0, "shard_size", "must be positive");
        Require(BatchSize > 0, "batch_size", "must be positive");
        Require(Net is null or "dit" or "dydit" or "sparsedit", "net", $"must be dit, dydit or sparsedit, found '{Net}'");
        Require(Preprocess is "adm" or "pytorch-fid", "preprocess", $"must be adm or pytorch-fid, found '{Preprocess}'");
        Require(Lambda is null or (> 0 and <= 1), "lambda", "must be in (0, 1]");
        Require(Reference == null || Inception != null, "reference", "needs 'inception' (the weights that turn samples into features)");
    }

    private void CheckFiles(string file)
    {
        void Exists(string key, string? path, bool directory = false)
        {
            if (path == null) return;
            if (directory ? !Directory.Exists(path) : !File.Exists(path))
                throw new TensorFileException(file, $"key '{key}': {path} not found");
        }
        Exists("checkpoint", Checkpoint);
        Exists("vae", Vae, directory: true);
        if (!DiffusionModels.IsPreset(Model)) Exists("model", Model);
        if (Labels is not ("uniform" or "balanced")) Exists("labels", Labels);
        Exists("inception", Inception);
        Exists("reference", Reference);
        try
        {
            VaeDecoder.Files(Vae);
        }
        catch (FileNotFoundException e)
        {
            throw new TensorFileException(file, $"key 'vae': {e.Message}");
        }
    }

    /// <summary>The resolved spec as JSON (absolute paths), what the ledger stores and workers rebuild from.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("name", Name);
            if (Description != null) w.WriteString("description", Description);
            w.WriteString("model", Model);
            if (Net != null) w.WriteString("net", Net);
            w.WriteString("checkpoint", Checkpoint);
            w.WriteString("vae", Vae);
            w.WriteNumber("num_samples", NumSamples);
            w.WriteNumber("seed", Seed);
            w.WriteNumber("cfg_scale", CfgScale);
            w.WriteNumber("steps", Steps);
            w.WriteString("sampler", Sampler);
            w.WriteNumber("eta", Eta);
            w.WriteString("labels", Labels);
            w.WriteNumber("image_size", ImageSize);
            w.WriteNumber("num_classes", NumClasses);
            w.WriteNumber("shard_size", ShardSize);
            w.WriteNumber("batch_size", BatchSize);
            w.WriteString("output", Output);
            if (Inception != null) w.WriteString("inception", Inception);
            if (Reference != null) w.WriteString("reference", Reference);
            w.WriteString("preprocess", Preprocess);
            if (Lambda is double l) w.WriteNumber("lambda", l);
            if (Demo) w.WriteBoolean("demo", true);
            if (Numerics != RunNumerics.LegacyCpu) w.WriteString("numerics", Numerics);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// The run id: 16 hex digits of SHA-256 over everything that changes the run's shard files — the model (preset name or
    /// the model JSON's bytes), network kind, the weights' and VAE's content hashes (not their paths), sample count,
    /// seed, guidance, steps, sampler, η, labels (mode or the label file's bytes), sizes, shard size and the numerics identity
    /// (<see cref="Numerics"/>; left out for the legacy <c>cpu-fp32</c>, so old ledgers still find their runs). Batch size,
    /// thread count, workers, names and paths do not enter: they change nothing in the output.
    /// </summary>
    public string ComputeRunId()
    {
        var (vaeConfig, vaeWeights) = VaeDecoder.Files(Vae);
        var parts = new List<string>
        {
            "dydit-eval run v1",
            "model=" + (DiffusionModels.IsPreset(Model) ? Model : "sha256:" + ContentHashes.Of(Model)),
            "net=" + (Net ?? "auto"),
            "checkpoint=" + ContentHashes.Of(Checkpoint),
            "vae=" + ContentHashes.Of(vaeConfig) + "+" + ContentHashes.Of(vaeWeights),
            "num_samples=" + NumSamples.ToString(CultureInfo.InvariantCulture),
            "seed=" + Seed.ToString(CultureInfo.InvariantCulture),
            "cfg_scale=" + CfgScale.ToString("R", CultureInfo.InvariantCulture),
            "steps=" + Steps.ToString(CultureInfo.InvariantCulture),
            "sampler=" + Sampler,
            "eta=" + Eta.ToString("R", CultureInfo.InvariantCulture),
            "labels=" + (Labels is "uniform" or "balanced" ? Labels : "sha256:" + ContentHashes.Of(Labels)),
            "image_size=" + ImageSize.ToString(CultureInfo.InvariantCulture),
            "num_classes=" + NumClasses.ToString(CultureInfo.InvariantCulture),
            "shard_size=" + ShardSize.ToString(CultureInfo.InvariantCulture),
            "noise=per-sample",
        };
        if (Numerics != RunNumerics.LegacyCpu) parts.Add("numerics=" + Numerics);
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts)));
        return Convert.ToHexStringLower(digest)[..16];
    }
}
