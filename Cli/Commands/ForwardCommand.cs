using System.CommandLine;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Evaluation.Inception;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;
using DyDiT.Eval.Workers.Networks.Vae;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval forward --net dit|dydit|sparsedit|vae|inception --checkpoint K [--config C] --inputs IN.npz -o OUT.npz</c>: one network call on recorded
/// inputs, for parity checks and for checking that a checkpoint loads and behaves before a long run.
/// </summary>
internal static class ForwardCommand
{
    public static Command Create()
    {
        var net = new Option<string>("--net") { Description = "Network: dit, dydit, sparsedit, vae (sd-vae decoder) or inception (the FID Inception v3)", Required = true };
        net.AcceptOnlyFromAmong("dit", "dydit", "sparsedit", "vae", "inception");
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "dit, dydit, sparsedit: the official .pt (state dict or training dict with ema/model); " +
                          "vae: the diffusers folder (config.json + diffusion_pytorch_model.safetensors or .bin), or a weights file with --config; " +
                          "inception: pt_inception-2015-12-05-6726825d.pth",
            Required = true,
        };
        var config = new Option<string?>("--config")
        {
            Description = "dit, dydit, sparsedit: a preset (DiT-XL/2, …, SparseDiT-XL/2; 256×256 latents of 32×32) or a JSON file whose constructor_kwargs hold the official constructor's arguments; " +
                          "vae: a diffusers config.json, when --checkpoint is a weights file",
        };
        var inputs = new Option<string>("--inputs")
        {
            Description = "dit, dydit, sparsedit: .npz with x float32 [B,C,H,W], t int64 [B], y int64 [B], and a scalar cfg_scale to call forward_with_cfg on the doubled batch; " +
                          "vae: .npz with 'z' float32 [N,4,h,w] in DiT latent space (divided by 0.18215 here, as the samplers do); " +
                          "inception: 'x' float32 [N,299,299,3] (preprocessed network input) or 'arr_0' uint8 images [N,H,W,3] (preprocessed with --preprocess)",
            Required = true,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output .npz — dit, dydit, sparsedit: out (and macs, the multiply-accumulates executed; dydit also dense_macs, " +
                          "attn_masks and mlp_masks [B,depth,heads], token_select [B,depth,T,1] as the official forward returns them); vae: decoded (NCHW float32) and uint8_hwc; inception: pool, spatial, logits",
            Required = true,
        };
        var preprocess = new Option<string>("--preprocess") { Description = "For arr_0 images: adm (default) or pytorch-fid", DefaultValueFactory = _ => "adm" };
        preprocess.AcceptOnlyFromAmong("adm", "pytorch-fid");
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores)" };
        var device = DeviceOptions.DeviceOption();
        var precision = DeviceOptions.PrecisionOption(DeviceOptions.FeaturesPrecision);
        var command = new Command("forward", "Run one network call on recorded inputs and write its outputs (parity checks, debugging a checkpoint).")
        {
            net, checkpoint, config, inputs, output, preprocess, threads, device, precision,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            using var cpu = DeviceOptions.Create(parse.GetValue(device)!, parse.GetValue(threads), parse.GetValue(precision), DeviceOptions.FeaturesPrecision);
            string inputPath = parse.GetValue(inputs)!, weights = parse.GetValue(checkpoint)!;
            PathArguments.InputFile(inputPath, "--inputs");
            PathArguments.OutputFile(parse.GetValue(output)!, "-o");
            if (parse.GetValue(net) is "dit" or "dydit" or "sparsedit")
            {
                string name = parse.GetValue(net)!;
                Transformer(cpu, name, weights, parse.GetValue(config) ?? throw new UsageException($"--net {name} needs --config (a preset or a JSON config)"),
                    inputPath, parse.GetValue(output)!);
                return ExitCodes.Ok;
            }
            if (parse.GetValue(net) == "vae")
            {
                Vae(cpu, weights, parse.GetValue(config), inputPath, parse.GetValue(output)!);
                return ExitCodes.Ok;
            }
            PathArguments.InputFile(weights, "--checkpoint");
            using var network = FidInceptionV3.Load(weights, cpu);
            var features = Inception(network, inputPath, InceptionOptions.Mode(parse.GetValue(preprocess)!));
            features.Save(parse.GetValue(output)!);
            Console.Error.WriteLine($"wrote pool, spatial, logits for {features.Count} image(s) to {parse.GetValue(output)}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    // x (B, C, H, W), t (B), y (B) [, cfg_scale ()] → out (B, C_out, H, W)
    private static void Transformer(IBackend cpu, string net, string checkpoint, string configName, string inputPath, string outputPath)
    {
        PathArguments.InputFile(checkpoint, "--checkpoint");
        if (Directory.Exists(configName)) throw new TensorFileException(configName, "is a directory; --config needs a preset name or a JSON file");
        string? json = File.Exists(configName) ? File.ReadAllText(configName) : null;
        var inputs = ReadTransformerInputs(inputPath, ParseLatentConfig(net, configName, json));
        IDisposable model;
        Func<Tensor, long[], long[], float?, ForwardResult> run;
        Action<NpzWriter>? extra = null;
        if (net == "dydit")
        {
            var config = json != null ? DitConfig.FromJson(json)
                : DitConfig.PresetNames.Contains(configName) ? DitConfig.Preset(configName)
                : throw new UsageException($"--config {configName}: neither a file nor a preset ({string.Join(", ", DitConfig.PresetNames)})");
            var dydit = DyDit.Load(checkpoint, config, cpu);
            (model, run) = (dydit, (x, t, y, s) =>
            {
                var r = s is float scale ? dydit.ForwardWithCfg(x, t, y, scale) : dydit.Forward(x, t, y);
                var g = r.Routing;
                extra = w =>
                {
                    w.WriteArray<long>("dense_macs", DType.Int64, [], [r.DenseMultiplyAccumulates]);
                    w.WriteArray<float>("attn_masks", DType.Float32, [g.Batch, g.Depth, g.Heads], g.AttnMasks);
                    w.WriteArray<float>("mlp_masks", DType.Float32, [g.Batch, g.Depth, g.Heads], g.MlpMasks);
                    w.WriteArray<float>("token_select", DType.Float32, [g.Batch, g.Depth, g.Tokens, 1], g.TokenSelect);
                };
                return new ForwardResult(r.Output, r.MultiplyAccumulates);
            });
        }
        else if (net == "dit")
        {
            var config = json != null ? DitConfig.FromJson(json)
                : DitConfig.PresetNames.Contains(configName) ? DitConfig.Preset(configName)
                : throw new UsageException($"--config {configName}: neither a file nor a preset ({string.Join(", ", DitConfig.PresetNames)})");
            var dit = Workers.Networks.Dit.Load(checkpoint, config, cpu);
            (model, run) = (dit, (x, t, y, s) => s is float scale ? dit.ForwardWithCfg(x, t, y, scale) : dit.Forward(x, t, y));
        }
        else
        {
            var config = json != null ? SparseDitConfig.FromJson(json)
                : SparseDitConfig.PresetNames.Contains(configName) ? SparseDitConfig.Preset(configName)
                : throw new UsageException($"--config {configName}: neither a file nor a preset ({string.Join(", ", SparseDitConfig.PresetNames)})");
            var sparse = SparseDit.Load(checkpoint, config, cpu);
            (model, run) = (sparse, (x, t, y, s) => s is float scale ? sparse.ForwardWithCfg(x, t, y, scale) : sparse.Forward(x, t, y));
        }
        using var _ = model;
        using var input = cpu.FromHost(inputs.X, inputs.Shape);
        var result = run(input, inputs.T, inputs.Y, inputs.CfgScale);
        using var output = result.Output;
        using var writer = new NpzWriter(outputPath);
        writer.WriteArray<float>("out", DType.Float32, output.Shape.ToArray().Select(d => (long)d).ToArray(), output.ToArray());
        writer.WriteArray<long>("macs", DType.Int64, [], [result.MultiplyAccumulates]);
        extra?.Invoke(writer);
        writer.Complete();
        Console.Error.WriteLine($"wrote out {string.Join("×", output.Shape.ToArray())} ({result.MultiplyAccumulates / 1e9:F3} G multiply-adds) to {outputPath}");
    }

    private sealed record TransformerInputs(float[] X, int[] Shape, long[] T, long[] Y, float? CfgScale);

    private static (int InChannels, int InputSize, int NumClasses) ParseLatentConfig(string net, string configName, string? json)
    {
        if (net == "sparsedit")
        {
            var c = json != null ? SparseDitConfig.FromJson(json)
                : SparseDitConfig.PresetNames.Contains(configName) ? SparseDitConfig.Preset(configName)
                : throw new UsageException($"--config {configName}: neither a file nor a preset ({string.Join(", ", SparseDitConfig.PresetNames)})");
            return (c.InChannels, c.InputSize, c.NumClasses);
        }
        var d = json != null ? DitConfig.FromJson(json)
            : DitConfig.PresetNames.Contains(configName) ? DitConfig.Preset(configName)
            : throw new UsageException($"--config {configName}: neither a file nor a preset ({string.Join(", ", DitConfig.PresetNames)})");
        return (d.InChannels, d.InputSize, d.NumClasses);
    }

    // x float [B, C, H, W] with the config's C and H = W = input_size, t and y int [B], labels in [0, num_classes]
    // (num_classes is the null class), an optional scalar cfg_scale with an even B. Checked before any compute; a
    // fault names the file and the array.
    private static TransformerInputs ReadTransformerInputs(string inputPath, (int InChannels, int InputSize, int NumClasses) config)
    {
        using var npz = NpzArchive.Open(inputPath);
        foreach (var name in new[] { "x", "t", "y" })
            if (!npz.Contains(name)) throw new TensorFileException(inputPath, $"has no array '{name}' (dit needs x, t, y); it holds: {string.Join(", ", npz.Arrays.Select(a => a.Name))}");
        var xa = npz["x"];
        string Found(StoredTensor a) => $"{a.DType.NumpyName()} [{string.Join(",", a.Shape)}]";
        if (xa.DType is not (DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64) || xa.Shape.Count != 4
            || xa.Shape[1] != config.InChannels || xa.Shape[2] != config.InputSize || xa.Shape[3] != config.InputSize || xa.Shape[0] < 1)
            throw new TensorFileException(inputPath, $"array 'x' must be float32 [B,{config.InChannels},{config.InputSize},{config.InputSize}] with B >= 1 (the config's in_channels and input_size), found {Found(xa)}");
        long batch = xa.Shape[0];
        var t = IntegerVectors.Read(npz["t"], inputPath, "array 't'");
        var y = IntegerVectors.Read(npz["y"], inputPath, "array 'y'");
        if (t.Length != batch) throw new TensorFileException(inputPath, $"array 't' holds {t.Length} timesteps but 'x' has a batch of {batch}");
        if (y.Length != batch) throw new TensorFileException(inputPath, $"array 'y' holds {y.Length} labels but 'x' has a batch of {batch}");
        int bad = Array.FindIndex(y, v => v < 0 || v > config.NumClasses);
        if (bad >= 0) throw new TensorFileException(inputPath, $"array 'y' holds label {y[bad]} at index {bad}, outside [0, {config.NumClasses}] (num_classes {config.NumClasses} is the null class)");
        float? cfgScale = null;
        if (npz.Contains("cfg_scale"))
        {
            var c = npz["cfg_scale"];
            if (c.ElementCount != 1 || c.DType is not (DType.Float32 or DType.Float64 or DType.Float16 or DType.Int64 or DType.Int32))
                throw new TensorFileException(inputPath, $"array 'cfg_scale' must be one number, found {Found(c)}");
            if (batch % 2 != 0)
                throw new TensorFileException(inputPath, $"with 'cfg_scale', 'x' must hold the doubled batch (conditional half, then the null-class half): its batch {batch} is odd");
            cfgScale = c.ToFloat32()[0];
        }
        return new TransformerInputs(xa.ToFloat32(), xa.Shape.Select(v => checked((int)v)).ToArray(), t, y, cfgScale);
    }

    // z (N, 4, h, w) in DiT latent space → decoded (N, 3, 8h, 8w) and uint8_hwc (N, 8h, 8w, 3)
    private static void Vae(IBackend cpu, string checkpoint, string? configPath, string inputPath, string outputPath)
    {
        using var vae = configPath != null ? VaeDecoder.Load(configPath, checkpoint, cpu) : VaeDecoder.Load(checkpoint, cpu);
        float[] z;
        int[] shape;
        using (var npz = NpzArchive.Open(inputPath))
        {
            if (!npz.Contains("z")) throw new TensorFileException(inputPath, $"has no array 'z'; it holds: {string.Join(", ", npz.Arrays.Select(a => a.Name))}");
            var zArray = npz["z"];
            if (zArray.Shape.Count != 4 || zArray.Shape[1] != vae.Config.LatentChannels || zArray.Shape[0] < 1
                || zArray.DType is not (DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64))
                throw new TensorFileException(inputPath, $"array 'z' must be float32 [N,{vae.Config.LatentChannels},h,w] with N >= 1, found {zArray.DType.NumpyName()} [{string.Join(",", zArray.Shape)}]");
            z = zArray.ToFloat32();
            shape = zArray.Shape.Select(d => checked((int)d)).ToArray();
        }
        for (int i = 0; i < z.Length; i++) z[i] /= VaeDecoder.LatentScale; // as the samplers do: samples / 0.18215
        using var latents = cpu.FromHost(z, shape);
        using var images = vae.Decode(latents);
        var decoded = images.ToArray();
        int n = images.Dim(0), c = images.Dim(1), h = images.Dim(2), w = images.Dim(3);
        var u8 = VaeDecoder.ToUint8Hwc(decoded, n, c, h, w);
        using var writer = new NpzWriter(outputPath);
        writer.WriteArray<float>("decoded", DType.Float32, [n, c, h, w], decoded);
        writer.WriteArray<byte>("uint8_hwc", DType.UInt8, [n, h, w, c], u8);
        writer.Complete();
        Console.Error.WriteLine($"wrote decoded and uint8_hwc for {n} latent(s) to {outputPath}");
    }

    private static InceptionFeatures Inception(FidInceptionV3 network, string path, PreprocessMode mode)
    {
        using (var npz = NpzArchive.Open(path))
        {
            if (npz.Contains("x"))
            {
                var x = npz["x"];
                if (x.DType != DType.Float32 || x.Shape.Count != 4 || x.Shape[1] != FidInceptionV3.InputSize || x.Shape[2] != FidInceptionV3.InputSize || x.Shape[3] != 3)
                    throw new TensorFileException(path, $"array 'x' must be float32 [N,{FidInceptionV3.InputSize},{FidInceptionV3.InputSize},3], found {x.DType.NumpyName()} [{string.Join(",", x.Shape)}]");
                return network.Run(x.ToFloat32(), checked((int)x.Shape[0]));
            }
        }
        return FeatureExtractor.Extract(path, network, mode);
    }
}
