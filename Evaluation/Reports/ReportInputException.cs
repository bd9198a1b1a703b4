namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// A run directory cannot be reported on: its <c>run-summary.json</c> or <c>samples.npz</c> is missing, or the summary
/// does not parse or breaks the contract. The message names the file and what to do, so a command prints it as is
/// (exit code 1, bad input).
/// </summary>
public sealed class ReportInputException : Exception
{
    public ReportInputException(string path, string fault, Exception? inner = null)
        : base($"{path}: {fault}", inner)
    {
        FilePath = path;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }
}

/// <summary>
/// The report could not be written (full disk, read-only or vanished file system, no permission): the message names the
/// report folder and the reason; the folder holds the previous report or nothing, and no temporary folder is left
/// (exit code 3, environment).
/// </summary>
public sealed class ReportOutputException : Exception
{
    public ReportOutputException(string path, Exception inner)
        : base($"{path}: cannot write the report: {Reason(inner)}; the folder was left as it was", inner)
    {
        FolderPath = path;
    }

    /// <summary>The report folder.</summary>
    public string FolderPath { get; }

    private static string Reason(Exception e) =>
        Engine.Formats.DiskFull.Is(e) ? "no space left on device" : e.Message;
}
