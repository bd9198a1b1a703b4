using DyDiT.Eval.Engine.Backends.Cpu;
using DyDiT.Eval.Engine.Formats;

namespace DyDiT.Eval.Cli;

/// <summary>Runs a verb and turns failures into one line on stderr and DESIGN.md's exit code; no stack traces.</summary>
internal static class CommandRunner
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (UsageException e)
        {
            Fail(e.Message, ExitCodes.Usage);
            Console.Error.WriteLine("Run 'dydit-eval --help' for usage.");
            return ExitCodes.Usage;
        }
        catch (TensorFileException e)
        {
            return Fail(e.Message, ExitCodes.BadInput);
        }
        catch (FileNotFoundException e)
        {
            return Fail($"{e.FileName ?? "?"}: file not found", ExitCodes.BadInput);
        }
        catch (DirectoryNotFoundException e)
        {
            return Fail(e.Message, ExitCodes.BadInput);
        }
        catch (UnauthorizedAccessException e)
        {
            return Fail(e.Message, ExitCodes.BadInput);
        }
        catch (OpenBlasMissingException e)
        {
            return Fail(e.Message, ExitCodes.Environment);
        }
        catch (Engine.Backends.DeviceUnavailableException e)
        {
            return Fail(e.Message, ExitCodes.Environment);
        }
        catch (Cluster.Work.RunConflictException e)
        {
            return Fail(e.Message, ExitCodes.BadInput);
        }
        catch (Commands.RunFailedException e)
        {
            return Fail(e.Message, ExitCodes.BadInput);
        }
        catch (EnvironmentException e)
        {
            return Fail(e.Message, ExitCodes.Environment);
        }
        catch (Cluster.Ledger.LedgerException e)
        {
            return Fail(e.Message, ExitCodes.Environment);
        }
        catch (OutputWriteException e)
        {
            return Fail(e.Message, ExitCodes.Environment);
        }
        catch (IOException e) when (PathArguments.IsDiskFull(e))
        {
            // A full disk anywhere (.NET's message names the file): the machine's state, not the input's.
            return Fail($"cannot write: {e.Message}", ExitCodes.Environment);
        }
        catch (OperationCanceledException)
        {
            return Fail("interrupted", ExitCodes.Interrupted);
        }
        catch (IOException e) when (e is not EndOfStreamException)
        {
            // Not a file fault (readers raise TensorFileException for those): the machine failed a read or a write
            // (disk full, read-only folder, I/O error). .NET's message names the path.
            return Fail(e.Message, ExitCodes.Environment);
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("DYDIT_DEBUG") != "1")
        {
            // A bug on our side: one line, and how to get the details.
            return Fail($"internal error {e.GetType().Name}: {e.Message} (set DYDIT_DEBUG=1 for the stack trace)", ExitCodes.BadInput);
        }
    }

    private static int Fail(string message, int code)
    {
        // Messages quote names read from files; a crafted name must not drive the terminal.
        Console.Error.WriteLine($"dydit-eval: {PrintableText.EscapeMessage(message)}");
        return code;
    }
}
