using Spectre.Console;

namespace DyDiT.Eval.Cli;

/// <summary>Progress bars on stderr (stdout stays clean for --json and pipes), with rate and time left.</summary>
internal static class Progress
{
    private static readonly IAnsiConsole Err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });

    /// <summary>Runs <paramref name="work"/>, which reports bytes processed, under a bar for <paramref name="total"/> bytes.</summary>
    public static void Bytes(string description, long total, Action<IProgress<long>> work)
    {
        Err.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: total);
                work(new Reporter(task));
            });
    }

    private sealed class Reporter(ProgressTask task) : IProgress<long>
    {
        public void Report(long value) => task.Increment(value);
    }
}
