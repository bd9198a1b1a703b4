namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// Whether a failed write means its file system is full (ENOSPC, EDQUOT; ERROR_DISK_FULL on Windows): an environment
/// fault that waiting or restarting does not fix. One test for every layer that writes (CLI, reports, cluster).
/// </summary>
public static class DiskFull
{
    /// <summary>Whether <paramref name="e"/> (or what it wraps) is a full disk or an exceeded quota.</summary>
    public static bool Is(Exception? e)
    {
        for (; e != null; e = e.InnerException)
        {
            if (e is not IOException io) continue;
            // On Unix .NET puts the errno into HResult: ENOSPC 28, EDQUOT 122 (Linux) / 69 (macOS); on Windows
            // ERROR_DISK_FULL (112) and ERROR_HANDLE_DISK_FULL (39) as HRESULTs.
            int h = io.HResult;
            if (OperatingSystem.IsWindows() ? h is unchecked((int)0x80070070) or unchecked((int)0x80070027) : h is 28 or 122 || (OperatingSystem.IsMacOS() && h == 69))
                return true;
            if (io.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase) ||
                io.Message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }
}
