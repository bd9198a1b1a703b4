using System.Globalization;
using System.Text;
using System.Text.Json;
using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Vae;
using DyDiT.Eval.Workers.Sampling;

namespace DyDiT.Eval.Cluster.Demo;

/// <summary>What <see cref="DemoAssets.Create"/> makes.</summary>
/// <param name="Seed">Every random number of the assets follows from it: the same seed gives byte-identical files.</param>
/// <param name="NumSamples">Samples each run spec asks for.</param>
/// <param name="Steps">Sampling steps each run spec asks for.</param>
/// <param name="ReferenceSamples">Images in the demo reference batch.</param>
/// <param name="Force">Write into a folder that is not empty (replacing the demo's files, keeping the rest).</param>
public sealed record DemoOptions(long Seed = 0, int NumSamples = 500, int Steps = 25, int ReferenceSamples = 500, bool Force = false);

/// <summary>
/// <c>dydit-eval demo init</c>: small random-weight stand-ins for every file the real pipeline downloads, in the
/// official layouts, so that a new user can run sampling, feature extraction and evaluation end to end in minutes
/// with nothing downloaded. The weights are random: the numbers they produce measure the pipeline, not a model.
/// <code>
///   models/dit-demo.pt (+ .json)            DiT state dict (torch.save zip) and its constructor kwargs
///   models/dydit-demo-0.7.pt, -0.5.pt (+ .json)  the same backbone with DyDiT routers for λ = 0.7 and 0.5
///   models/vae-demo/                        diffusers AutoencoderKL folder: config.json + diffusion_pytorch_model.safetensors
///   models/pt_inception-demo.pth            FID Inception weights under the published key names (~95 MB)
///   reference/demo-ref.npz                  ADM-style reference batch (arr_0 uint8 [N,64,64,3], labels int64 [N])
///   runs/dit-demo.json, dydit-demo-0.7.json, dydit-demo-0.5.json   run specs (paths relative to the spec)
///   README.md
/// </code>
/// Everything is deterministic from <see cref="DemoOptions.Seed"/>: random numbers come from per-tensor Philox
/// streams, and the two steps that run networks (DyDiT token-router calibration, decoding the reference images) use
/// one CPU thread. Every file is written under a temporary name and renamed into place.
/// </summary>
public static class DemoAssets
{
    public const string DitModel = "dit-demo";
    public const string VaeFolder = "vae-demo";
    public const string InceptionFile = "pt_inception-demo.pth";
    public const string ReferenceFile = "demo-ref.npz";

    /// <summary>λ of the two DyDiT demo models.</summary>
    public static IReadOnlyList<double> Lambdas { get; } = [0.7, 0.5];

    /// <summary>The DyDiT demo model name for <paramref name="lambda"/> (<c>dydit-demo-0.7</c>).</summary>
    public static string DyDitModel(double lambda) => "dydit-demo-" + lambda.ToString("0.0##", CultureInfo.InvariantCulture);

    /// <summary>The DiT (and DyDiT) constructor kwargs of the demo models.</summary>
    public static DitConfig ModelConfig => DemoTransformer.Config;

    /// <summary>
    /// Writes the demo assets into <paramref name="directory"/> (created if missing) and returns the files written,
    /// relative to it. A folder that holds anything is refused unless <see cref="DemoOptions.Force"/>.
    /// <paramref name="log"/> hears one line per step. Needs OpenBLAS (as sampling does).
    /// </summary>
    public static IReadOnlyList<string> Create(string directory, DemoOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        string root = Path.GetFullPath(directory);
        if (File.Exists(root)) throw new IOException($"{directory}: is a file, not a folder");
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any() && !options.Force)
            throw new IOException($"{directory}: the folder is not empty; choose an empty or new folder, or pass --force to overwrite the demo files in it");
        log ??= _ => { };
        var written = new List<string>();
        string Out(string relative)
        {
            written.Add(relative.Replace('\\', '/'));
            string full = Path.Combine(root, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            return full;
        }

        using var cpu = Backends.Create("cpu", threads: 1);
        var config = DemoTransformer.Config;

        log($"DiT {Describe(config)}");
        var dit = DemoTransformer.DitWeights(config, new DemoRandom(options.Seed, "dit"));
        dit.SaveTorch(Out($"models/{DitModel}.pt"));
        WriteText(Out($"models/{DitModel}.json"), ModelJson(DiffusionModels.DitClass, config, options.Seed, null));

        foreach (double lambda in Lambdas)
        {
            log($"DyDiT λ = {lambda.ToString(CultureInfo.InvariantCulture)}: routers on the DiT backbone, token routers calibrated");
            string name = DyDitModel(lambda);
            var dydit = DemoRouters.Add(dit, config, lambda, new DemoRandom(options.Seed, name), cpu);
            dydit.SaveTorch(Out($"models/{name}.pt"));
            WriteText(Out($"models/{name}.json"), ModelJson(DiffusionModels.DyDitClass, config, options.Seed, lambda));
        }

        log("VAE (diffusers AutoencoderKL, 8x upsampling)");
        var vaeShape = DemoVae.Demo;
        WriteText(Out($"models/{VaeFolder}/config.json"), DemoVae.ConfigJson(vaeShape));
        DemoVae.Weights(vaeShape, new DemoRandom(options.Seed, "vae")).SaveSafetensors(Out($"models/{VaeFolder}/diffusion_pytorch_model.safetensors"));

        log("FID Inception weights (~95 MB)");
        DemoInception.Weights(new DemoRandom(options.Seed, "inception")).SaveTorch(Out($"models/{InceptionFile}"));

        log($"reference batch: {options.ReferenceSamples} images decoded by the demo VAE from random latents");
        WriteReference(Out($"reference/{ReferenceFile}"), Path.Combine(root, "models", VaeFolder), config, options, cpu);

        foreach (var (name, net, lambda) in Runs())
            WriteText(Out($"runs/{name}.json"), RunJson(name, net, lambda, options));
        WriteText(Out("README.md"), Readme(options));
        return written;
    }

    /// <summary>Checks options before anything is written; bad values raise <see cref="ArgumentException"/>.</summary>
    public static void Validate(DemoOptions options)
    {
        if (options.Seed < 0) throw new ArgumentException($"seed {options.Seed} must be >= 0");
        if (options.NumSamples <= 0) throw new ArgumentException($"number of samples {options.NumSamples} must be positive");
        if (options.Steps is < 2 or > 1000) throw new ArgumentException($"steps {options.Steps} must be in [2, 1000]");
        if (options.ReferenceSamples is <= 0 or > 1_000_000) throw new ArgumentException($"reference samples {options.ReferenceSamples} must be in [1, 1000000]");
    }

    private static IEnumerable<(string Name, string Net, double? Lambda)> Runs()
    {
        yield return (DitModel, "dit", null);
        foreach (double lambda in Lambdas) yield return (DyDitModel(lambda), "dydit", lambda);
    }

    private static string Describe(DitConfig c) =>
        $"input {c.InputSize}, patch {c.PatchSize}, hidden {c.HiddenSize}, depth {c.Depth}, heads {c.NumHeads}, {c.NumClasses} classes + null";

    // ---- reference batch ----

    private static void WriteReference(string path, string vaeFolder, DitConfig config, DemoOptions options, IBackend cpu)
    {
        const int Chunk = 50;
        var random = new DemoRandom(options.Seed, "reference");
        int n = options.ReferenceSamples, c = config.InChannels, size = config.InputSize, row = c * size * size;
        var labels = random.Labels(n, config.NumClasses);
        using var vae = VaeDecoder.Load(vaeFolder, cpu);
        int image = size * vae.Config.UpsampleFactor;
        using var writer = new NpzWriter(path);
        writer.BeginArray("arr_0", DType.UInt8, n, image, image, vae.Config.OutChannels);
        for (int start = 0; start < n; start += Chunk)
        {
            int count = Math.Min(Chunk, n - start);
            var latents = random.Normal((long)count * row, 1); // DiT-space latents ~ N(0, 1), decoded as decode(z / 0.18215)
            writer.Write<byte>(SampleImages.Decode(vae, cpu, latents, count, c, size, batchInvariant: true));
        }
        writer.EndArray();
        writer.WriteArray<long>("labels", DType.Int64, [n], labels);
        writer.Complete();
    }

    // ---- text files ----

    private static void WriteText(string path, string text)
    {
        string temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.tmp-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static string Json(Action<Utf8JsonWriter> body)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            body(w);
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private static string ModelJson(string cls, DitConfig c, long seed, double? lambda) => Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("class", cls);
        w.WriteStartObject("constructor_kwargs");
        w.WriteNumber("input_size", c.InputSize);
        w.WriteNumber("patch_size", c.PatchSize);
        w.WriteNumber("in_channels", c.InChannels);
        w.WriteNumber("hidden_size", c.HiddenSize);
        w.WriteNumber("depth", c.Depth);
        w.WriteNumber("num_heads", c.NumHeads);
        w.WritePropertyName("mlp_ratio");
        w.WriteRawValue(c.MlpRatio.ToString("0.0###############", CultureInfo.InvariantCulture)); // 4.0, as Python's json writes the float
        w.WriteNumber("class_dropout_prob", c.ClassDropoutProb);
        w.WriteNumber("num_classes", c.NumClasses);
        w.WriteBoolean("learn_sigma", c.LearnSigma);
        w.WriteEndObject();
        w.WriteBoolean("demo", true);
        w.WriteStartObject("weights");
        w.WriteString("randomization", DemoTransformer.Description);
        if (lambda is double l)
        {
            w.WriteNumber("lambda", l);
            w.WriteString("routers", $"head/MLP-group routers switch off about {DemoRouters.WidthOffShare(c, l):0.###} of heads 1..H-1 and groups 1..H-1 " +
                $"averaged over t = 0..999 (more at noisier t); token routers calibrated to skip the MLP of about {DemoRouters.TokenOffShare(l):0.###} of the tokens; " +
                "target: routed multiply-accumulates about lambda of DiT's");
        }
        w.WriteNumber("seed", seed);
        w.WriteEndObject();
        w.WriteString("note", "random weights: this model generates nothing meaningful; it exists to run the pipeline");
        w.WriteEndObject();
    });

    private static string RunJson(string name, string net, double? lambda, DemoOptions o) => Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("model", $"../models/{name}.json");
        w.WriteString("net", net);
        if (lambda is double l) w.WriteNumber("lambda", l);
        w.WriteString("checkpoint", $"../models/{name}.pt");
        w.WriteString("vae", $"../models/{VaeFolder}");
        w.WriteNumber("num_samples", o.NumSamples);
        w.WriteNumber("seed", 0);
        w.WriteNumber("cfg_scale", 1.5);
        w.WriteNumber("steps", o.Steps);
        w.WriteString("sampler", "ddpm");
        w.WriteString("labels", "uniform");
        w.WriteNumber("shard_size", Math.Min(100, o.NumSamples));
        w.WriteNumber("batch_size", Math.Min(25, o.NumSamples));
        w.WriteString("output", $"../out/{name}");
        w.WriteString("inception", $"../models/{InceptionFile}");
        w.WriteString("reference", $"../reference/{ReferenceFile}");
        w.WriteBoolean("demo", true);
        w.WriteEndObject();
    });

    private static string Readme(DemoOptions o)
    {
        var c = DemoTransformer.Config;
        var v = DemoVae.Demo;
        string seed = o.Seed.ToString(CultureInfo.InvariantCulture);
        return $"""
            # DyDiT.Eval demo assets (seed {seed})

            **Every weight in this folder is random.** The files exist so that the whole pipeline — sampling with DiT and
            DyDiT, VAE decoding, Inception features, FID / sFID / Inception Score / precision / recall, reports — can be
            run in minutes with nothing downloaded. The numbers it produces measure the pipeline (it runs, it is
            deterministic, DyDiT skips work), never a model: FID of random networks against a random reference says
            nothing about DiT or DyDiT.

            Made by `dydit-eval demo init DIR --seed {seed}`; the same seed gives byte-identical files.

            | file | what |
            | --- | --- |
            | `models/{DitModel}.pt`, `.json` | DiT ({Describe(c)}), `torch.save` zip state dict, official key names |
            | `models/{DyDitModel(0.7)}.pt`, `models/{DyDitModel(0.5)}.pt` (+ `.json`) | the same backbone plus DyDiT's routers, set to skip about 30 % / 50 % of the routed work, more at noisy timesteps |
            | `models/{VaeFolder}/` | diffusers `AutoencoderKL` folder (`config.json`, `diffusion_pytorch_model.safetensors`), block_out_channels [{string.Join(", ", v.BlockOutChannels)}]: 8×8 latents → 64×64 images |
            | `models/{InceptionFile}` | FID Inception v3 under the published key names and shapes of `pt_inception-2015-12-05-6726825d.pth` |
            | `reference/{ReferenceFile}` | reference batch in ADM's layout: `arr_0` uint8 [{o.ReferenceSamples}, 64, 64, 3] (the demo VAE decoding random latents), `labels` int64 |
            | `runs/*.json` | run specs for `dit-demo`, `dydit-demo-0.7`, `dydit-demo-0.5` ({o.NumSamples} samples, {o.Steps} DDPM steps, cfg 1.5); paths are relative to the spec |

            Try one model by hand:

            ```bash
            dydit-eval sample --model models/{DyDitModel(0.5)}.json --checkpoint models/{DyDitModel(0.5)}.pt --vae models/{VaeFolder} \
                --num-samples 100 --steps {o.Steps} --cfg-scale 1.5 -o out/{DyDitModel(0.5)}.npz
            dydit-eval evaluate --ref reference/{ReferenceFile} --sample out/{DyDitModel(0.5)}.npz --inception models/{InceptionFile}
            ```

            or all three with `dydit-eval run --config runs/dit-demo.json` (and the two DyDiT specs).

            """;
    }
}
