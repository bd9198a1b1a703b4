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

    /// <summary>
    /// Runs <paramref name="work"/>, which reports how many items are done so far, under a bar for
    /// <paramref name="total"/> items showing the rate (<paramref name="unit"/>/s) and the time left.
    /// Without a terminal on stderr it prints a line every ~10 %.
    /// </summary>
    public static void Items(string description, long total, string unit, Action<IProgress<long>> work)
    {
        if (Console.IsErrorRedirected)
        {
            var start = System.Diagnostics.Stopwatch.StartNew();
            long nextLine = Math.Max(1, total / 10);
            work(new LineReporter(description, total, unit, start, nextLine));
            return;
        }
        Err.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new RateColumn(unit), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: Math.Max(total, 1));
                work(new AbsoluteReporter(task));
            });
    }

    private sealed class AbsoluteReporter(ProgressTask task) : IProgress<long>
    {
        public void Report(long value) => task.Value = value;
    }

    private sealed class LineReporter(string description, long total, string unit, System.Diagnostics.Stopwatch clock, long step) : IProgress<long>
    {
        private long _next;

        public void Report(long value)
        {
            if (value < _next && value < total) return;
            _next = value + Math.Max(1, step);
            double rate = value / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            double left = rate > 0 ? (total - value) / rate : 0;
            Console.Error.WriteLine($"{description}: {value}/{total} {unit} ({rate:F1} {unit}/s, {TimeSpan.FromSeconds(Math.Round(left)):g} left)");
        }
    }

    private sealed class RateColumn(string unit) : ProgressColumn
    {
        public override Spectre.Console.Rendering.IRenderable Render(Spectre.Console.Rendering.RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is double s ? $"{s:F1} {unit}/s" : $"-- {unit}/s");
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
