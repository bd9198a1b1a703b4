using System.Runtime.InteropServices;

namespace DyDiT.Eval.Cli;

/// <summary>
/// SIGTERM and SIGINT (Ctrl-C) turned into a cancellation, so long verbs stop cleanly — give shards back, delete partial
/// files — instead of dying mid-write. Dispose to restore the default handling.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration _term, _int;

    public StopSignals()
    {
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
    }

    /// <summary>Cancelled on the first SIGTERM or SIGINT.</summary>
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
        _stop.Dispose();
    }
}
