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
