using System.CommandLine;
using DyDiT.Eval.Cli;
using DyDiT.Eval.Cli.Commands;

var root = new RootCommand(
    "dydit-eval: generate class-conditional ImageNet samples with DiT, DyDiT and SparseDiT and score them the way " +
    "ADM's evaluator does (FID, sFID, Inception Score, precision, recall), on one box or a cluster.\n\n" +
    "Exit codes: 0 ok, 1 bad input, 2 usage, 3 environment (e.g. OpenBLAS missing, disk full), 130 interrupted.");
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(SampleCommand.Create());
root.Subcommands.Add(FeaturesCommand.Create());
root.Subcommands.Add(EvaluateCommand.Create());
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(WorkerCommand.Create());
root.Subcommands.Add(MergeCommand.Create());
root.Subcommands.Add(ReportCommand.Create());
root.Subcommands.Add(DoctorCommand.Create());
root.Subcommands.Add(DemoCommand.Create());

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"dydit-eval: {error.Message}");
    Console.Error.WriteLine("Run 'dydit-eval --help' for usage.");
    return ExitCodes.Usage;
}
return parsed.Invoke();
