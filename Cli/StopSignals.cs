using System.Runtime.InteropServices;

namespace DyDiT.Eval.Cli;

/// <summary>
/// SIGTERM, SIGINT (Ctrl-C) and SIGHUP (the terminal or ssh session closed) turned into a cancellation, so long verbs
/// stop cleanly — give shards back, delete partial files, exit 130 — instead of dying mid-write. Dispose to restore the
/// default handling.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration _term, _int;
    private readonly PosixSignalRegistration? _hup;

    public StopSignals()
    {
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        if (!OperatingSystem.IsWindows()) _hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Handle);
    }

    /// <summary>Cancelled on the first SIGTERM, SIGINT or SIGHUP.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>Cancels as a signal would (e.g. when the parent process is gone).</summary>
    public void Stop() => _stop.Cancel();

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Cancel();
    }

    public void Dispose()
    {
        _term.Dispose();
        _int.Dispose();
        _hup?.Dispose();
        _stop.Dispose();
    }
}
