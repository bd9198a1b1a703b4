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

    /// <summary>
    /// Runs <paramref name="work"/> under a live display of named steps: each <see cref="Steps.Start"/> finishes the
    /// previous step and opens a new one; <see cref="Steps.Report"/> moves the current step's bar (with time left).
    /// </summary>
    public static void Stepwise(Action<Steps> work)
    {
        Err.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx => work(new Steps(ctx)));
    }

    /// <summary>The steps of a <see cref="Stepwise"/> run.</summary>
    internal sealed class Steps(ProgressContext context)
    {
        private ProgressTask? _current;

        public void Start(string description)
        {
            Finish();
            _current = context.AddTask(Markup.Escape(description), maxValue: 1);
            _current.IsIndeterminate = true;
        }

        public void Report(double done, double total)
        {
            if (_current == null) return;
            _current.IsIndeterminate = false;
            _current.MaxValue = Math.Max(total, 1);
            _current.Value = done;
        }

        public void Finish()
        {
            if (_current == null) return;
            _current.IsIndeterminate = false;
            _current.Value = _current.MaxValue;
            _current.StopTask();
        }
    }
}
