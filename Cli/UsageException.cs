namespace DyDiT.Eval.Cli;

/// <summary>A command-line value that parses but makes no sense: exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
