using System.CommandLine;
using System.Text.Json;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Merge;
using DyDiT.Eval.Cluster.Work;
using DyDiT.Eval.Engine.Formats;

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
            using var signals = new StopSignals(); // a stop mid-merge removes the partial samples.npz and exits 130
            string given = parse.GetValue(run)!;
            string? runId = given, fallback = null;
            string? flag = parse.GetValue(ledger);
            if (Directory.Exists(given))
            {
                runId = RunIdOf(given);
                fallback = "sqlite:" + Path.Combine(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(given)))!, Ledgers.DefaultSqliteFileName);
            }
            else if (File.Exists(given))
                throw new TensorFileException(given, "is a file; --run takes a run's output directory (the one holding run.json) or a run id");
            else if (given.IndexOfAny(['/', '\\']) >= 0 || given.StartsWith('.'))
                throw new DirectoryNotFoundException($"{given}: no such run directory; --run takes a run's output directory (the one holding " +
                                                     $"{ShardFiles.RunFile}) or a run id (with --ledger or ${Ledgers.EnvironmentVariable})");
            else if (string.IsNullOrWhiteSpace(flag) && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(Ledgers.EnvironmentVariable)))
                throw new UsageException($"--run {given}: there is no directory of that name; give the run's output directory (the one holding " +
                                         $"{ShardFiles.RunFile}), or, for a run id, the ledger that holds it with --ledger (or ${Ledgers.EnvironmentVariable})");
            string location = LedgerOption.Resolve(flag, fallback);
            return LedgerOption.Run(location, async l =>
            {
                var retry = new LedgerRetry(TimeSpan.FromMinutes(2), m => Console.Error.WriteLine(m), l.Description);
                var record = await retry.RunAsync(ct => l.GetRunAsync(runId!, ct), signals.Token) ?? throw new UsageException($"run '{runId}' is not in {l.Description}");
                string target = parse.GetValue(output) ?? Path.Combine(record.OutputDirectory, ShardFiles.Samples);
                MergeResult? result;
                try
                {
                    result = null;
                    Progress.Items($"merging {record.Name}", record.NumSamples, "samples",
                        report => result = RunMerger.MergeAsync(l, record, target, retry, m => Console.Error.WriteLine(m), report, signals.Token).GetAwaiter().GetResult());
                }
                catch (InvalidOperationException e)
                {
                    throw new RunFailedException(e.Message);
                }
                if (result == null)
                    throw new RunFailedException($"run {record.Name}: shard(s) failed verification and were put back to pending; run workers again, then merge");
                Console.Error.WriteLine($"wrote {result.Samples} samples to {result.Path} (sha256 {result.Sha256})");
                return ExitCodes.Ok;
            }, stop: signals.Token);
        }));
        return command;
    }

    /// <summary>The run id in <c>run.json</c> of <paramref name="directory"/>; bad input naming the file and the fault otherwise.</summary>
    private static string RunIdOf(string directory)
    {
        var runFile = Path.Combine(directory, ShardFiles.RunFile);
        if (!File.Exists(runFile)) throw new FileNotFoundException($"{runFile}: file not found (is {directory} a run's output directory?)", runFile);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(runFile));
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("run_id", out var id)
                && id.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(id.GetString()))
                return id.GetString()!;
            throw new TensorFileException(runFile, "has no string 'run_id' (run.json as 'dydit-eval run' writes it holds the run id, the ledger and the spec)");
        }
        catch (JsonException e)
        {
            throw new TensorFileException(runFile, $"is not valid JSON ({e.Message}); 'dydit-eval run' writes it when it plans the run: plan the run again, " +
                                                   "or give --run the run id and --ledger");
        }
    }
}
