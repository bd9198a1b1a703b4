namespace DyDiT.Eval.Cli;

/// <summary>DESIGN.md's exit codes.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int BadInput = 1;
    public const int Usage = 2;
    public const int Environment = 3;
    public const int Interrupted = 130;
}
