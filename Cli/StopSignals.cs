using System.Runtime.InteropServices;

namespace DyDiT.Eval.Cli;

/// <summary>
/// SIGTERM, SIGINT (Ctrl-C) and SIGHUP (the terminal or ssh session closed) turned into a cancellation, so long verbs
/// stop cleanly — give shards back, delete partial files, exit 130 — instead of dying mid-write. A process started with
/// SIGHUP ignored (<c>nohup</c>) keeps ignoring it. Dispose to restore the default handling.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration _term, _int;
    private readonly PosixSignalRegistration? _hup;

    /// <param name="hangup">
    /// Also stop on SIGHUP (the default), unless the process was started with SIGHUP ignored (<c>nohup</c>), which is then respected.
    /// </param>
    public StopSignals(bool hangup = true)
    {
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        if (hangup && !HangupIgnored()) _hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Handle);
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

    /// <summary>Whether SIGHUP's disposition is SIG_IGN (as <c>nohup</c> leaves it); false where it cannot be asked.</summary>
    private static bool HangupIgnored()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        // struct sigaction starts with the handler on Linux and macOS; 256 bytes cover the whole struct on both.
        var old = new byte[256];
        try
        {
            return sigaction(1 /* SIGHUP */, IntPtr.Zero, old) == 0 && BitConverter.ToInt64(old, 0) == 1 /* SIG_IGN */;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int sigaction(int signal, IntPtr action, [Out] byte[] oldAction);
}
