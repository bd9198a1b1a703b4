using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace DyDiT.Eval.Bench;

/// <summary>
/// A PostgreSQL server that lives only as long as the ledger benchmark: <c>initdb</c> into a fresh folder under /tmp,
/// <c>pg_ctl start</c> on a free loopback port, trust authentication, and stop + delete on dispose.
/// <para>Why not the tests' PostgresServer: it is an xunit fixture (IAsyncLifetime, FactAttribute), and the bench should
/// not carry xunit. Unlike that fixture this server keeps fsync ON (PostgreSQL's default): the benchmark measures what a
/// deployed ledger's commits cost, and the SQLite ledger it is compared with syncs every commit too.</para>
/// <para>PostgreSQL refuses to run as root; under root the server programs run as the <c>postgres</c> account (created by
/// Debian's package) through <c>runuser</c>.</para>
/// </summary>
internal sealed class ThrowawayPostgres : IAsyncDisposable
{
    private const string Superuser = "postgres";
    private const string ServerAccount = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private readonly string _bin;
    private readonly string? _runuser;
    private readonly string _root;
    private bool _started;

    private ThrowawayPostgres(string bin, string? runuser, string root)
    {
        _bin = bin;
        _runuser = runuser;
        _root = root;
    }

    public int Port { get; private set; }

    /// <summary>The server version as initdb reports it, e.g. "initdb (PostgreSQL) 15.14".</summary>
    public string Version { get; private set; } = "";

    private string DataDirectory => Path.Combine(_root, "data");

    private string SocketDirectory => Path.Combine(_root, "sock");

    private string LogFile => Path.Combine(_root, "postgres.log");

    /// <summary>An Npgsql connection string for <paramref name="database"/> (what <c>Ledgers.OpenAsync</c> accepts).</summary>
    public string ConnectionString(string database) =>
        string.Create(CultureInfo.InvariantCulture, $"Host=127.0.0.1;Port={Port};Username={Superuser};Database={database}");

    /// <summary>Why no server can be started here, or null when one can.</summary>
    public static string? UnavailableReason(out string? bin, out string? runuser)
    {
        runuser = null;
        bin = null;
        if (OperatingSystem.IsWindows()) return "the throw-away PostgreSQL server is for Linux and macOS";
        bin = FindBinDirectory();
        if (bin == null) return "initdb/pg_ctl not found (apt-get install -y postgresql, or set DYDIT_PG_BINDIR)";
        if (!Environment.IsPrivilegedProcess) return null;
        runuser = new[] { "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser" }.FirstOrDefault(File.Exists);
        if (runuser == null) return "running as root and runuser is missing (PostgreSQL will not run as root)";
        if (!File.ReadLines("/etc/passwd").Any(l => l.StartsWith(ServerAccount + ":", StringComparison.Ordinal)))
            return $"running as root and there is no '{ServerAccount}' account to run PostgreSQL as";
        return null;
    }

    /// <summary>Creates and starts a server; throws <see cref="InvalidOperationException"/> with the log's tail on failure.</summary>
    public static async Task<ThrowawayPostgres> StartAsync()
    {
        if (UnavailableReason(out string? bin, out string? runuser) is { } why) throw new InvalidOperationException(why);
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the throw-away PostgreSQL server is for Linux and macOS");
        // /tmp rather than $TMPDIR under root: the server account must be able to walk down to its folder.
        string parent = runuser != null ? "/tmp" : Path.GetTempPath();
        string root = Path.Combine(parent, "dydit-bench-pg-" + Guid.NewGuid().ToString("N")[..10]);
        const UnixFileMode open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead |
                                  UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(root, open);
        var server = new ThrowawayPostgres(bin!, runuser, root);
        try
        {
            Directory.CreateDirectory(server.SocketDirectory, open);
            if (runuser != null) await Checked("chown", ["-R", ServerAccount + ":", root], asServer: false, server).ConfigureAwait(false);
            server.Version = (await Checked(Path.Combine(bin!, "initdb"), ["--version"], asServer: true, server).ConfigureAwait(false)).Trim();
            await Checked(Path.Combine(bin!, "initdb"),
                ["-D", server.DataDirectory, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], asServer: true, server).ConfigureAwait(false);
            // A port found free can be taken before the server binds it: try a fresh one a few times.
            for (int attempt = 1; ; attempt++)
            {
                server.Port = FreeLoopbackPort();
                string options = string.Create(CultureInfo.InvariantCulture,
                    $"-k '{server.SocketDirectory}' -p {server.Port} -c listen_addresses=127.0.0.1 -c max_connections=100");
                var (code, output) = await server.RunAsync(Path.Combine(bin!, "pg_ctl"),
                    ["-D", server.DataDirectory, "-l", server.LogFile, "-o", options, "-w", "-t", "60", "start"], asServer: true).ConfigureAwait(false);
                if (code == 0) break;
                if (attempt == 3) throw new InvalidOperationException($"pg_ctl start failed ({code}): {output.Trim()}\n{server.LogTail()}");
            }

            server._started = true;
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_started)
        {
            _started = false;
            // Immediate: nothing here is worth a checkpoint; the folder is deleted next.
            await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "60", "stop"], asServer: true)
                .ConfigureAwait(false);
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"could not delete {_root}: {e.Message}");
        }
    }

    private static async Task<string> Checked(string file, string[] arguments, bool asServer, ThrowawayPostgres server)
    {
        var (code, output) = await server.RunAsync(file, arguments, asServer).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({code}): {output.Trim()}");
        return output;
    }

    private async Task<(int Code, string Output)> RunAsync(string file, string[] arguments, bool asServer)
    {
        var start = asServer && _runuser != null
            ? new ProcessStartInfo(_runuser, ["-u", ServerAccount, "--", file, .. arguments])
            : new ProcessStartInfo(file, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        start.WorkingDirectory = "/"; // the server account may not be allowed into our working directory
        // libpq and the server tools honour PG* variables (PGDATA, PGPORT, …); this server is configured explicitly.
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList()) start.Environment.Remove(key);
        start.Environment["LC_ALL"] = "C";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{file} did not finish within {CommandTimeout.TotalSeconds:F0} s");
        }

        return (process.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
    }

    private string LogTail()
    {
        try
        {
            return string.Join('\n', File.ReadLines(LogFile).TakeLast(15));
        }
        catch (IOException)
        {
            return "(no server log)";
        }
    }

    /// <summary>DYDIT_PG_BINDIR, else the newest /usr/lib/postgresql/VERSION/bin, else the folder of initdb on PATH.</summary>
    private static string? FindBinDirectory()
    {
        static bool HasServer(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"));
        if (Environment.GetEnvironmentVariable("DYDIT_PG_BINDIR") is { Length: > 0 } chosen) return HasServer(chosen) ? chosen : null;
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            var newest = Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Bin: Path.Combine(d, "bin"), Version: double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : -1))
                .OrderByDescending(d => d.Version)
                .Select(d => d.Bin)
                .FirstOrDefault(HasServer);
            if (newest != null) return newest;
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(HasServer);
    }

    private static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
