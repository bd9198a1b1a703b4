using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DyDiT.Eval.Cluster.Demo;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval demo init DIR [--seed S] [--num-samples N] [--steps N] [--reference-samples N] [--force]</c>: writes
/// small random-weight models, a VAE, Inception weights, a reference batch and run specs in the official layouts
/// (<see cref="DemoAssets"/>), so the whole pipeline can be tried with nothing downloaded.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var directory = new Argument<string>("DIR") { Description = "Folder to create (must be empty or new unless --force)" };
        var seed = new Option<long>("--seed") { Description = "Seed of every random weight and image; the same seed gives byte-identical files", DefaultValueFactory = _ => 0 };
        var numSamples = new Option<int>("--num-samples") { Description = "Samples each run spec asks for", DefaultValueFactory = _ => 500 };
        var steps = new Option<int>("--steps") { Description = "DDPM sampling steps in the run specs", DefaultValueFactory = _ => 25 };
        var reference = new Option<int>("--reference-samples") { Description = "Images in the demo reference batch", DefaultValueFactory = _ => 500 };
        var force = new Option<bool>("--force") { Description = "Write into a folder that is not empty, replacing the demo files in it" };
        var init = new Command("init",
            "Write random-weight demo assets in the official layouts: a tiny DiT and DyDiT (λ 0.7, 0.5) as torch.save checkpoints, a " +
            "diffusers VAE folder, FID Inception weights (~95 MB), an ADM-style reference batch and three run specs. The weights are " +
            "random: the results exercise the pipeline and measure no model.")
        {
            directory, seed, numSamples, steps, reference, force,
        };
        init.SetAction(parse => CommandRunner.Run(() =>
        {
            var options = new DemoOptions(parse.GetValue(seed), parse.GetValue(numSamples), parse.GetValue(steps), parse.GetValue(reference), parse.GetValue(force));
            try
            {
                DemoAssets.Validate(options);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            return Init(parse.GetValue(directory)!, options);
        }));
        return new Command("demo", "Demo assets for trying the pipeline without downloads") { init };
    }

    private static int Init(string directory, DemoOptions options)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyList<string> files;
        try
        {
            files = DemoAssets.Create(directory, options, line => Console.Error.WriteLine($"demo: {line}"));
        }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException))
        {
            Console.Error.WriteLine($"dydit-eval: {e.Message}");
            return ExitCodes.BadInput;
        }
        foreach (var f in files) Console.WriteLine(Path.Combine(directory, f));
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {files.Count} files to {directory} in {clock.Elapsed.TotalSeconds:F1} s (random weights: they test the pipeline, not a model); see {Path.Combine(directory, "README.md")}"));
        return ExitCodes.Ok;
    }
}
