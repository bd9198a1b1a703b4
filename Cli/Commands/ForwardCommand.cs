using System.CommandLine;
using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Inception;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval forward --net NET --checkpoint K --inputs IN.npz -o OUT.npz</c>: one network call on recorded
/// inputs, for parity checks and for checking that a checkpoint loads and behaves before a long run.
/// </summary>
internal static class ForwardCommand
{
    public static Command Create()
    {
        var net = new Option<string>("--net") { Description = "Network: inception (the FID Inception v3)", Required = true };
        net.AcceptOnlyFromAmong("inception");
        var checkpoint = new Option<string>("--checkpoint") { Description = "Weights file (inception: pt_inception-2015-12-05-6726825d.pth)", Required = true };
        var inputs = new Option<string>("--inputs")
        {
            Description = "inception: .npz with 'x' float32 [N,299,299,3] (preprocessed network input) or 'arr_0' uint8 images [N,H,W,3] (preprocessed with --preprocess)",
            Required = true,
        };
        var output = new Option<string>("--output", "-o") { Description = "Output .npz (inception: pool, spatial, logits)", Required = true };
        var preprocess = new Option<string>("--preprocess") { Description = "For arr_0 images: adm (default) or pytorch-fid", DefaultValueFactory = _ => "adm" };
        preprocess.AcceptOnlyFromAmong("adm", "pytorch-fid");
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores)" };
        var command = new Command("forward", "Run one network call on recorded inputs and write its outputs (parity checks, debugging a checkpoint).")
        {
            net, checkpoint, inputs, output, preprocess, threads,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            using var cpu = new CpuBackend(parse.GetValue(threads));
            string inputPath = parse.GetValue(inputs)!, weights = parse.GetValue(checkpoint)!;
            foreach (var path in new[] { inputPath, weights })
                if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
            using var network = FidInceptionV3.Load(weights, cpu);
            var features = Inception(network, inputPath, InceptionOptions.Mode(parse.GetValue(preprocess)!));
            features.Save(parse.GetValue(output)!);
            Console.Error.WriteLine($"wrote pool, spatial, logits for {features.Count} image(s) to {parse.GetValue(output)}");
            return ExitCodes.Ok;
        }));
        return command;
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
