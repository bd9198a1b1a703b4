using System.CommandLine;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval features --images X.npz --inception W -o F.npz [--batch 64] [--preprocess adm|pytorch-fid]</c>:
/// streams arr_0 through the FID Inception network and writes pool [N,2048], spatial [N,2023], logits [N,1008].
/// </summary>
internal static class FeaturesCommand
{
    public static Command Create()
    {
        var images = new Option<string>("--images") { Description = "Image batch: .npz with arr_0 uint8 [N,H,W,3] (ADM's sample format)", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Features file to write (.npz with pool, spatial, logits)", Required = true };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores)" };
        var device = DeviceOptions.DeviceOption();
        var precision = DeviceOptions.PrecisionOption(DeviceOptions.FeaturesPrecision);
        var inception = new InceptionOptions();
        inception.Weights.Required = true;
        var command = new Command("features",
            "Compute FID Inception features of an image batch: pool (FID, precision/recall), spatial (sFID) and logits " +
            "(Inception Score), exactly as ADM's evaluator computes them. The images are streamed in batches.")
        {
            images, output, threads, device, precision,
        };
        inception.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string imagesPath = parse.GetValue(images)!, outputPath = parse.GetValue(output)!;
            DeviceOptions.Resolve(parse.GetValue(device)!, parse.GetValue(precision), DeviceOptions.FeaturesPrecision); // a typo fails first
            PathArguments.OutputFile(outputPath, "-o");
            PathArguments.InputFile(imagesPath, "--images");
            using var cpu = DeviceOptions.Create(parse.GetValue(device)!, parse.GetValue(threads), parse.GetValue(precision), DeviceOptions.FeaturesPrecision);
            var extract = InceptionOptions.Extractor(parse.GetValue(inception.Weights)!, cpu,
                InceptionOptions.Mode(parse.GetValue(inception.Preprocess)!), parse.GetValue(inception.Batch));
            var features = extract(imagesPath);
            PathArguments.Writing(outputPath, () =>
            {
                features.Save(outputPath);
                return 0;
            });
            Console.Error.WriteLine($"wrote {features.Count} feature rows to {outputPath}");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
