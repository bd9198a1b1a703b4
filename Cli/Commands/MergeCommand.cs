using System.CommandLine;
using System.Text.Json;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Merge;
using DyDiT.Eval.Cluster.Work;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>
/// <c>dydit-eval merge --run ID|DIR [--ledger URL] [-o samples.npz]</c>: for runs whose workers were started by hand (Slurm,
/// ssh): verifies every shard against the ledger's sha256 and streams them into one ADM sample batch.
/// </summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "The run id, or its output directory (which holds run.json)", Required = true };
        var ledger = LedgerOption.Create("ledger.sqlite next to the run's output directory");
        var output = new Option<string?>("--output", "-o") { Description = "Merged batch (default: samples.npz in the run's output directory)" };
        var command = new Command("merge",
            "Merge a finished run's shards into one sample batch (arr_0 uint8 [N,H,W,3] + labels, index order), checking each shard's sha256 " +
            "against the ledger; shards that fail are put back to pending and named, so workers regenerate them.")
        {
            run, ledger, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string given = parse.GetValue(run)!;
            string? runId = given, fallback = null;
            if (Directory.Exists(given))
            {
                var runFile = Path.Combine(given, ShardFiles.RunFile);
                if (!File.Exists(runFile)) throw new FileNotFoundException($"{runFile}: file not found (is {given} a run's output directory?)", runFile);
                using var doc = JsonDocument.Parse(File.ReadAllText(runFile));
                runId = doc.RootElement.GetProperty("run_id").GetString();
                fallback = "sqlite:" + Path.Combine(Path.GetDirectoryName(Path.GetFullPath(given).TrimEnd('/'))!, Ledgers.DefaultSqliteFileName);
            }
            string location = LedgerOption.Resolve(parse.GetValue(ledger), fallback);
            return LedgerOption.Run(location, async l =>
            {
                var retry = new LedgerRetry(TimeSpan.FromMinutes(2), m => Console.Error.WriteLine(m));
                var record = await l.GetRunAsync(runId!) ?? throw new UsageException($"run '{runId}' is not in {l.Description}");
                string target = parse.GetValue(output) ?? Path.Combine(record.OutputDirectory, ShardFiles.Samples);
                MergeResult? result;
                try
                {
                    result = null;
                    Progress.Items($"merging {record.Name}", record.NumSamples, "samples",
                        report => result = RunMerger.MergeAsync(l, record, target, retry, m => Console.Error.WriteLine(m), report).GetAwaiter().GetResult());
                }
                catch (InvalidOperationException e)
                {
                    throw new RunFailedException(e.Message);
                }
                if (result == null)
                    throw new RunFailedException($"run {record.Name}: shard(s) failed verification and were put back to pending; run workers again, then merge");
                Console.Error.WriteLine($"wrote {result.Samples} samples to {result.Path} (sha256 {result.Sha256})");
                return ExitCodes.Ok;
            });
        }));
        return command;
    }
}
