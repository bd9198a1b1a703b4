using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Workers.Diffusion;
using DyDiT.Eval.Workers.Networks.Vae;
using DyDiT.Eval.Workers.Noise;
using DyDiT.Eval.Workers.Sampling;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval sample --model PRESET|C --checkpoint K --vae V --num-samples N --seed S [--cfg-scale 1.5] [--steps 250]
/// [--sampler ddpm|ddim] [--eta 0] [--rng torch-cpu|per-sample] [--noise NOISE.npz] [--labels L] [--latents] [--batch-size 32]
/// -o OUT.npz</c>: generates samples on this machine and streams them, batch by batch, into an ADM-style batch
/// (<c>arr_0</c> uint8 [N,H,W,3] + <c>labels</c> int64 [N]), or with <c>--latents</c> the final latents
/// (<c>latents</c> float32 [N,C,h,w] + <c>labels</c>). The file appears under its name only when complete.
/// </summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "A sampling preset from configs/ (dit-xl2-256, dydit-xl2-256, sparsedit-xl2-256, sparsedit-xl2-512: model, sizes and " +
                          "the protocol's defaults, which explicit flags override), a model preset (DiT-XL/2, DiT-L/4, …, SparseDiT-XL/2; " +
                          "see also --image-size, --num-classes) or a JSON file with the constructor kwargs (the fixtures' model JSON, or " +
                          "the bare {\"input_size\": …} object)",
            Required = true,
        };
        var checkpoint = new Option<string>("--checkpoint") { Description = "Model weights: a torch.save state dict or training checkpoint (its 'ema' is used)", Required = true };
        var vae = new Option<string?>("--vae") { Description = "The sd-vae decoder: a diffusers folder (config.json + diffusion_pytorch_model.safetensors or .bin); not needed with --latents" };
        var numSamples = new Option<int>("--num-samples") { Description = "Samples to generate", Required = true };
        var seed = new Option<long>("--seed") { Description = "Global seed (as the scripts' --global-seed)", DefaultValueFactory = _ => 0 };
        var cfgScale = new Option<float>("--cfg-scale") { Description = "Classifier-free guidance scale; 1 = no guidance (no batch doubling), as sample_ddp.py", DefaultValueFactory = _ => 1.5f };
        var steps = new Option<int>("--steps") { Description = "Sampling steps: the 1000-step chain respaced as create_diffusion(str(steps))", DefaultValueFactory = _ => 250 };
        var sampler = new Option<string>("--sampler") { Description = "ddpm: p_sample_loop (the DiT scripts); ddim: ddim_sample_loop (FlexDiT's sample.py --mode ddim)", DefaultValueFactory = _ => "ddpm" };
        sampler.AcceptOnlyFromAmong("ddpm", "ddim");
        var eta = new Option<double>("--eta") { Description = "DDIM η (0 = deterministic updates; noise is still drawn every step)", DefaultValueFactory = _ => 0.0 };
        var rng = new Option<string>("--rng")
        {
            Description = "per-sample: sample i is the same whatever batch or worker makes it (its own Philox streams, one network call per " +
                          "sample); torch-cpu: one torch.manual_seed(seed) CPU stream in the scripts' order (z, then y, then one draw per " +
                          "step for the loop's whole batch), batch by batch as sample_ddp.py with --per-proc-batch-size = --batch-size",
            DefaultValueFactory = _ => "per-sample",
        };
        rng.AcceptOnlyFromAmong("per-sample", "torch-cpu");
        var noise = new Option<string?>("--noise")
        {
            Description = "Replay recorded noise instead of drawing it: .npz with z [n,C,h,w], step_noise [S,M,C,h,w] (M = n, or 2n with " +
                          "guidance) and optionally y [n or 2n] (labels), as the fixture traces; sample i uses row i",
        };
        var labels = new Option<string>("--labels")
        {
            Description = "uniform: drawn from the noise source (default; with torch-cpu as sample_ddp.py's randint); balanced: sample i gets " +
                          "class i mod num_classes (N/num_classes per class); a file of integers (text, or .npy int64/int32); or a " +
                          "comma-separated list, one per sample (sample.py's fixed labels; nothing is drawn)",
            DefaultValueFactory = _ => "uniform",
        };
        var start = new Option<long>("--start")
        {
            Description = "Index of the first sample (per-sample noise and balanced labels follow the global index, so shards of one run " +
                          "can be made separately: --start 0 --num-samples 25000 and --start 25000 --num-samples 25000)",
            DefaultValueFactory = _ => 0,
        };
        var latents = new Option<bool>("--latents") { Description = "Write the final latents (latents float32 [N,C,h,w] + labels) instead of decoded images" };
        var batchSize = new Option<int>("--batch-size", "--batch") { Description = "Samples per batch (memory grows with it)", DefaultValueFactory = _ => 32 };
        var imageSize = new Option<int>("--image-size") { Description = "Image size for a preset --model (latent size = image size / 8)", DefaultValueFactory = _ => 256 };
        var numClasses = new Option<int>("--num-classes") { Description = "Classes of a preset --model", DefaultValueFactory = _ => 1000 };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores)" };
        var device = DeviceOptions.DeviceOption();
        var precision = DeviceOptions.PrecisionOption(DeviceOptions.SamplingPrecision);
        var net = new Option<string?>("--net")
        {
            Description = "Network kind: dit, dydit or sparsedit (default: from the preset, the JSON class, or DyDiT routers found in the checkpoint); " +
                          "a kind that does not fit the checkpoint is an error naming the keys at fault",
        };
        net.AcceptOnlyFromAmong("dit", "dydit", "sparsedit");
        var output = new Option<string>("--output", "-o") { Description = "Output .npz: arr_0 uint8 [N,H,W,3] + labels int64 [N] (ADM's sample batch)", Required = true };
        var command = new Command("sample",
            "Generate class-conditional samples as the official DiT scripts do (DDPM or DDIM, classifier-free guidance on the first " +
            "three channels, sd-vae decoding, uint8 as sample_ddp.py) and stream them into an .npz batch.")
        {
            model, checkpoint, vae, numSamples, start, seed, cfgScale, steps, sampler, eta, rng, noise, labels, latents, batchSize,
            imageSize, numClasses, threads, device, precision, net, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            // A sampling preset (configs/NAME.json) names the model, sizes and the protocol's defaults; flags given
            // explicitly still win.
            bool Given(Option o) => parse.GetResult(o) is { Implicit: false };
            var preset = SamplingPreset.Find(parse.GetValue(model)!);
            var request = new Request(
                preset?.Model ?? parse.GetValue(model)!, parse.GetValue(checkpoint)!, parse.GetValue(vae), parse.GetValue(numSamples),
                parse.GetValue(start), parse.GetValue(seed),
                preset != null && !Given(cfgScale) ? preset.CfgScale : parse.GetValue(cfgScale),
                preset != null && !Given(steps) ? preset.Steps : parse.GetValue(steps),
                (preset != null && !Given(sampler) ? preset.Sampler : parse.GetValue(sampler)) == "ddim" ? SamplerKind.Ddim : SamplerKind.Ddpm,
                parse.GetValue(eta), parse.GetValue(rng)!, parse.GetResult(rng) is { Implicit: false }, parse.GetValue(noise),
                preset != null && !Given(labels) ? preset.Labels : parse.GetValue(labels), parse.GetValue(latents), parse.GetValue(batchSize),
                preset != null && !Given(imageSize) ? preset.ImageSize : parse.GetValue(imageSize),
                preset != null && !Given(numClasses) ? preset.NumClasses : parse.GetValue(numClasses),
                parse.GetValue(threads), parse.GetValue(device)!, parse.GetValue(precision), parse.GetValue(output)!, parse.GetValue(net) ?? preset?.Net);
            return Run(request);
        }));
        return command;
    }

    private sealed record Request(
        string Model, string Checkpoint, string? Vae, int NumSamples, long Start, long Seed, float CfgScale, int Steps, SamplerKind Kind, double Eta,
        string Rng, bool RngGiven, string? Noise, string? Labels, bool Latents, int BatchSize, int ImageSize, int NumClasses, int Threads,
        string Device, string? Precision, string Output, string? Net);

    private static int Run(Request r)
    {
        // SIGINT, SIGTERM and SIGHUP all stop the run the same way: exit 130, no temporary file left.
        using var signals = new StopSignals();

        // ---- arguments that can be checked before anything is loaded ----
        PathArguments.OutputFile(r.Output, "-o");
        DeviceOptions.Resolve(r.Device, r.Precision, DeviceOptions.SamplingPrecision);
        if (r.NumSamples <= 0) throw new UsageException("--num-samples must be positive");
        if (r.BatchSize <= 0) throw new UsageException("--batch-size must be positive");
        if (r.Seed < 0) throw new UsageException("--seed must be >= 0");
        if (r.Start < 0 || r.Start + r.NumSamples > 1L << 56) throw new UsageException($"--start {r.Start} must be in [0, 2^56 − N]");
        if (r.Start != 0 && (r.Noise != null || r.Rng == "torch-cpu"))
            throw new UsageException("--start needs per-sample noise (torch-cpu and replayed noise follow the batch order from sample 0)");
        if (!(r.CfgScale >= 1f)) throw new UsageException($"--cfg-scale {r.CfgScale.ToString(CultureInfo.InvariantCulture)} must be >= 1 (1 = no guidance)");
        if (!(r.Eta >= 0)) throw new UsageException("--eta must be >= 0");
        if (r.Eta != 0 && r.Kind != SamplerKind.Ddim) throw new UsageException("--eta applies to --sampler ddim only");
        if (r.Steps < 2 || r.Steps > 1000) throw new UsageException($"--steps {r.Steps} must be in [2, 1000]");
        if (r.Noise != null && r.RngGiven) throw new UsageException("--noise replays recorded noise; it cannot be combined with --rng");
        if (!r.Latents && r.Vae == null) throw new UsageException("--vae is required to decode images (or pass --latents)");
        if (r.Noise != null) PathArguments.InputFile(r.Noise, "--noise");
        PathArguments.InputFile(r.Checkpoint, "--checkpoint");
        if (Directory.Exists(r.Model)) PathArguments.InputFile(r.Model, "--model");
        if (!DiffusionModels.IsPreset(r.Model) && !File.Exists(r.Model))
            throw new UsageException($"--model '{r.Model}' is neither a sampling preset ({string.Join(", ", SamplingPreset.Names)}), a model preset (DiT-XL/2, …) nor an existing JSON config file");
        long[]? givenLabels = r.Labels is null or "uniform" or "balanced" ? null : ParseLabels(r.Labels, r.NumSamples);
        var schedule = DiffusionSchedule.Create(r.Steps.ToString(CultureInfo.InvariantCulture));

        // ---- models and noise ----
        using var cpu = DeviceOptions.Create(r.Device, r.Threads, r.Precision, DeviceOptions.SamplingPrecision);
        using var network = LoadModel(r, cpu);
        if (r.Labels == "balanced")
            givenLabels = Enumerable.Range(0, r.NumSamples).Select(k => (r.Start + k) % network.NumClasses).ToArray();
        foreach (long label in givenLabels ?? [])
            if (label >= network.NumClasses) throw new UsageException($"--labels: {label} is outside [0, {network.NumClasses})");
        signals.Token.ThrowIfCancellationRequested();
        using var decoder = r.Latents ? null : VaeDecoder.Load(r.Vae!, cpu);
        signals.Token.ThrowIfCancellationRequested();
        if (decoder != null && decoder.Config.LatentChannels != network.InChannels)
            throw new TensorFileException(r.Vae!, $"the VAE decodes {decoder.Config.LatentChannels}-channel latents, the model makes {network.InChannels}");
        var settings = new SamplerSettings(schedule, r.CfgScale, r.Kind, r.Eta, BatchInvariant: r.Noise == null && r.Rng == "per-sample");
        var sampler = new Sampler(network, settings);
        INoiseSource source;
        bool padBatches = false;
        if (r.Noise != null)
        {
            var replay = ReplayNoiseSource.Open(r.Noise);
            int wantRows = settings.UsesGuidance ? 2 * replay.Count : replay.Count;
            if (replay.Count < r.NumSamples)
                throw new TensorFileException(r.Noise, $"records {replay.Count} samples, {r.NumSamples} requested");
            if (replay.RowSize != sampler.LatentSize)
                throw new TensorFileException(r.Noise, $"rows hold {replay.RowSize} values, the model's latents {sampler.LatentSize}");
            if (replay.StepCount != schedule.NumTimesteps || replay.StepRows != wantRows)
                throw new TensorFileException(r.Noise, $"step_noise has {replay.StepCount} steps of {replay.StepRows} rows; --steps {r.Steps} " +
                    $"{(settings.UsesGuidance ? "with" : "without")} guidance needs {schedule.NumTimesteps} of {wantRows}");
            if (givenLabels == null && !Contains(r.Noise, "y"))
                throw new TensorFileException(r.Noise, "has no labels 'y'; pass --labels");
            source = replay;
        }
        else if (r.Rng == "torch-cpu")
        {
            source = new TorchCpuNoiseSource((ulong)r.Seed);
            padBatches = true; // sample_ddp.py runs whole batches and drops the extra samples
        }
        else source = new PerSampleNoise((ulong)r.Seed);

        // ---- sampling, streamed into the output ----
        int n = r.NumSamples, batch = Math.Min(r.BatchSize, n), size = network.InputSize, c = network.InChannels;
        int factor = decoder?.Config.UpsampleFactor ?? 1, imageChannels = decoder?.Config.OutChannels ?? 0;
        var cancel = signals.Token;
        return PathArguments.Writing(r.Output, () =>
        {
            using var writer = new NpzWriter(r.Output);
            if (r.Latents) writer.BeginArray("latents", DType.Float32, n, c, size, size);
            else writer.BeginArray("arr_0", DType.UInt8, n, size * factor, size * factor, imageChannels);
            var allLabels = new long[n];
            long macs = 0;
            var clock = Stopwatch.StartNew();
            string what = $"{network.Name} {r.Steps} steps{(settings.UsesGuidance ? $", cfg {r.CfgScale.ToString(CultureInfo.InvariantCulture)}" : "")}";
            Progress.Items($"sampling ({what})", n, "samples", report =>
            {
                for (int start = 0; start < n; start += batch)
                {
                    cancel.ThrowIfCancellationRequested();
                    int count = Math.Min(batch, n - start);
                    int rows = padBatches ? batch : count;
                    var indices = Enumerable.Range(start, rows).Select(i => r.Start + i).ToArray();
                    long[]? batchLabels = givenLabels == null ? null : Enumerable.Range(start, rows).Select(i => givenLabels[i % n]).ToArray();
                    int done = start;
                    var result = sampler.Sample(indices, source, batchLabels,
                        step => report.Report(done + (long)count * step / schedule.NumTimesteps), cancel);
                    macs += result.MultiplyAccumulates;
                    result.Labels.AsSpan(0, count).CopyTo(allLabels.AsSpan(start));
                    var kept = result.Latents.AsSpan(0, count * sampler.LatentSize);
                    if (decoder == null) writer.Write<float>(kept);
                    else writer.Write<byte>(SampleImages.Decode(decoder, cpu, kept, count, c, size, settings.BatchInvariant));
                    report.Report(start + count);
                }
            });
            writer.EndArray();
            writer.WriteArray<long>("labels", DType.Int64, [n], allLabels);
            writer.Complete();
            double seconds = clock.Elapsed.TotalSeconds;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {n} {(r.Latents ? "latents" : $"{size * factor}x{size * factor} images")} to {r.Output} in {seconds:F1} s " +
                $"({n / Math.Max(seconds, 1e-9):F2} samples/s); network: {macs / 1e9 / n:F2} GMAC per sample"));
            return ExitCodes.Ok;
        });
    }

    private static IDiffusionModel LoadModel(Request r, IBackend cpu)
    {
        try
        {
            return DiffusionModels.Load(r.Model, r.Checkpoint, cpu, r.ImageSize, r.NumClasses, r.Net);
        }
        catch (FormatException e)
        {
            throw new TensorFileException(r.Model, e.Message.StartsWith(r.Model + ": ", StringComparison.Ordinal) ? e.Message[(r.Model.Length + 2)..] : e.Message, e);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--model: {e.Message}");
        }
    }

    private static long[] ParseLabels(string text, int count)
    {
        if (Directory.Exists(text)) PathArguments.InputFile(text, "--labels");
        if (File.Exists(text)) return LabelFile.Read(text, count);
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var labels = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out labels[i]))
                throw new UsageException($"--labels: '{parts[i]}' is not a class index");
        if (labels.Length != count) throw new UsageException($"--labels gives {labels.Length} labels for --num-samples {count}");
        return labels;
    }

    private static bool Contains(string npzPath, string array)
    {
        using var npz = NpzArchive.Open(npzPath);
        return npz.Contains(array);
    }
}
