using DyDiT.Eval.Engine.Formats;

namespace DyDiT.Eval.Cluster.Work;

/// <summary>
/// A write that failed because its file system is full (ENOSPC, EDQUOT; ERROR_DISK_FULL on Windows): an environment
/// fault that waiting or restarting does not fix. The message names the path and what to do.
/// </summary>
public sealed class DiskFullException : IOException
{
    public DiskFullException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Whether <paramref name="e"/> (or what it wraps) is a full disk or an exceeded quota (<see cref="DiskFull.Is"/>).</summary>
    public static bool Is(Exception? e) => e is DiskFullException || DiskFull.Is(e);
}
