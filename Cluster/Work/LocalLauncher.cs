using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DyDiT.Eval.Cluster.Work;

/// <summary>The state of one local worker slot, for the progress view.</summary>
public sealed record WorkerSlot(int Slot, int? ProcessId, bool Running, int Starts, int? LastExitCode, string LogPath);

/// <summary>
/// Keeps N local worker processes alive while a run has work: starts them, restarts one that died (killed, crashed) as
/// long as work remains, and stops them all at the end with SIGTERM (they give their shards back) before killing
/// stragglers. A worker's stdout and stderr go to its log file. A worker that exits with a bad-input or environment code
/// (1, 3) is not restarted: <see cref="Failure"/> then holds its log's last lines, since retrying cannot help.
/// </summary>
public sealed class LocalLauncher : IAsyncDisposable
{
    private readonly Func<int, ProcessStartInfo> _startInfo;
    private readonly string _logDirectory;
    private readonly Action<string> _log;
    private readonly int _maxStarts;
    private readonly Slot[] _slots;

    /// <param name="startInfo">How to start the worker of a slot (the CLI knows its own command line).</param>
    /// <param name="count">Worker processes to keep running.</param>
    /// <param name="logDirectory">Where <c>worker-&lt;slot&gt;.log</c> files go.</param>
    /// <param name="log">Messages for the user.</param>
    /// <param name="maxStarts">Starts per slot before giving up on it (a crash loop).</param>
    public LocalLauncher(Func<int, ProcessStartInfo> startInfo, int count, string logDirectory, Action<string> log, int maxStarts = 50)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _startInfo = startInfo ?? throw new ArgumentNullException(nameof(startInfo));
        _logDirectory = logDirectory;
        _log = log ?? throw new ArgumentNullException(nameof(log));
        _maxStarts = maxStarts;
        _slots = Enumerable.Range(0, count).Select(i => new Slot(i, Path.Combine(logDirectory, $"worker-{i}.log"))).ToArray();
    }

    /// <summary>Why the run cannot go on (a worker failed on bad input or its environment), or null.</summary>
    public string? Failure { get; private set; }

    /// <summary>The exit code of the worker whose failure <see cref="Failure"/> reports (1 or 3), or null.</summary>
    public int? FailureCode { get; private set; }

    public IReadOnlyList<WorkerSlot> Slots => _slots.Select(s => s.Snapshot()).ToArray();

    /// <summary>Starts every slot that is not running; with <paramref name="workRemains"/> false, starts nothing.</summary>
    public void Tend(bool workRemains)
    {
        Directory.CreateDirectory(_logDirectory);
        foreach (var slot in _slots)
        {
            if (slot.Process is { } p && !slot.ExitHandled)
            {
                if (!p.HasExited) continue;
                int code = p.ExitCode;
                slot.Exited(code);
                slot.ExitHandled = true;
                if (code is 1 or 3)
                {
                    if (Failure == null)
                    {
                        Failure = $"worker {slot.Index} exited with code {code}:\n{slot.Tail()}";
                        FailureCode = code;
                    }
                    continue;
                }
                if (code != 0) _log($"worker {slot.Index} (pid {p.Id}) exited with code {code}; restarting it");
            }
            if (!workRemains || Failure != null || slot.Given) continue;
            if (slot.Starts >= _maxStarts)
            {
                Failure ??= $"worker {slot.Index} was started {slot.Starts} times and keeps exiting; see {slot.LogPath}";
                slot.Given = true;
                continue;
            }
            slot.Start(_startInfo(slot.Index));
        }
    }

    /// <summary>
    /// Waits up to <paramref name="wait"/> for the workers to exit on their own (they do once no work is left), then stops
    /// the rest as <see cref="StopAsync"/> does.
    /// </summary>
    public async Task DrainAsync(TimeSpan wait, TimeSpan grace)
    {
        var deadline = DateTime.UtcNow + wait;
        while (DateTime.UtcNow < deadline && _slots.Any(s => s.Process is { HasExited: false }))
            await Task.Delay(100).ConfigureAwait(false);
        await StopAsync(grace).ConfigureAwait(false);
    }

    /// <summary>Asks every worker to stop (SIGTERM: it gives its shard back), waits up to <paramref name="grace"/>, then kills.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        foreach (var slot in _slots)
            if (slot.Process is { HasExited: false } p) Terminate(p.Id);
        var deadline = DateTime.UtcNow + grace;
        foreach (var slot in _slots)
        {
            if (slot.Process is not { } p) continue;
            var left = deadline - DateTime.UtcNow;
            using var wait = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            try
            {
                await p.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            slot.Exited(p.ExitCode);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
        foreach (var slot in _slots) slot.Dispose();
    }

    private static void Terminate(int pid)
    {
        if (OperatingSystem.IsWindows()) return; // no SIGTERM: StopAsync kills after the grace period
        _ = Kill(pid, 15);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private sealed class Slot(int index, string logPath) : IDisposable
    {
        /// <summary>Lines of the worker's output kept in memory for <see cref="Failure"/>: its log may sit on a full disk.</summary>
        private const int TailLines = 15;

        private readonly Queue<string> _tail = new();
        private StreamWriter? _logWriter;

        public int Index { get; } = index;

        public string LogPath { get; } = logPath;

        public Process? Process { get; private set; }

        public int Starts { get; private set; }

        public int? LastExit { get; private set; }

        public bool Given { get; set; }

        public bool ExitHandled { get; set; }

        public void Start(ProcessStartInfo info)
        {
            info.RedirectStandardOutput = true;
            info.RedirectStandardError = true;
            info.UseShellExecute = false;
            _logWriter ??= new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
            var writer = _logWriter;
            var p = new Process { StartInfo = info, EnableRaisingEvents = true };
            DataReceivedEventHandler pump = (_, e) =>
            {
                if (e.Data == null) return;
                lock (_tail)
                {
                    _tail.Enqueue(e.Data);
                    while (_tail.Count > TailLines) _tail.Dequeue();
                }
                try
                {
                    lock (writer) writer.WriteLine(e.Data);
                }
                catch (IOException)
                {
                    // The log's disk is full (often the output's own): losing a log line must not take the run down.
                }
            };
            p.OutputDataReceived += pump;
            p.ErrorDataReceived += pump;
            p.Start();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            Process?.Dispose();
            Process = p;
            ExitHandled = false;
            Starts++;
        }

        public void Exited(int code) => LastExit = code;

        /// <summary>The last lines the worker printed (its exit message among them), or where its log is when it printed none.</summary>
        public string Tail()
        {
            Process?.WaitForExit(); // the output pumps have delivered every line once this returns
            lock (_tail) return _tail.Count > 0 ? string.Join("\n", _tail) : $"(no output; see {LogPath})";
        }

        public WorkerSlot Snapshot()
        {
            var p = Process;
            bool running = p is { HasExited: false };
            return new WorkerSlot(Index, p?.Id, running, Starts, LastExit, LogPath);
        }

        public void Dispose()
        {
            Process?.Dispose();
            _logWriter?.Dispose();
        }
    }
}
