using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// A throw-away PostgreSQL server for tests (no mocks): <c>initdb</c> into a fresh directory under /tmp, <c>pg_ctl start</c>
/// on a free loopback port with fsync off, trust authentication for the superuser <see cref="User"/>, and everything
/// stopped and deleted on dispose. Use it as a collection fixture so one server serves a whole test collection; give each
/// test (class) its own database with <see cref="CreateDatabaseAsync"/>.
/// <para>It needs no database client library (psql does the little SQL it runs), so any test project can link it.</para>
/// <para>PostgreSQL refuses to run as root; under root the server binaries run as the <c>postgres</c> system user (which
/// Debian's package creates) through <c>runuser</c>, and the directory is handed to that user.</para>
/// <para>Without PostgreSQL, tests marked <see cref="PostgresFactAttribute"/> are skipped locally; with CI=true they run
/// and this fixture fails with the install command, so CI never passes by skipping.</para>
/// </summary>
public sealed class PostgresServer : IAsyncLifetime, IDisposable
{
    /// <summary>The superuser that tests connect as (no password: trust authentication on loopback).</summary>
    public const string User = "postgres";

    /// <summary>The address the server listens on.</summary>
    public const string Host = "127.0.0.1";

    /// <summary>Names the folder with initdb, pg_ctl and postgres, overriding the search (a specific version, or a test of the skip).</summary>
    public const string BinDirectoryVariable = "DYDIT_PG_BINDIR";

    private const string ServerAccount = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);
    private static readonly Lazy<Installation> Found = new(FindInstallation);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _root;
    private bool _disposed;

    /// <summary>Why no server can be started here (binaries or the server account missing), or null when one can.</summary>
    public static string? UnavailableReason => Found.Value.Missing;

    /// <summary>
    /// The skip reason for PostgreSQL tests: <see cref="UnavailableReason"/> plus how to install, except under CI=true,
    /// where it is null so the tests run and fail instead of passing by skipping.
    /// </summary>
    public static string? SkipReason =>
        UnavailableReason is { } why && !IsCi ? $"PostgreSQL tests skipped: {why} (apt-get install -y postgresql, or set CI=true to make this fail)" : null;

    /// <summary>The folder with initdb, pg_ctl and postgres, or null.</summary>
    public static string? BinDirectory => Found.Value.BinDirectory;

    /// <summary>The loopback port (fixed for the server's life, so a restart keeps every connection string valid).</summary>
    public int Port { get; private set; }

    /// <summary>The folder the server puts its unix socket in (<c>-k</c>).</summary>
    public string SocketDirectory => Path.Combine(Root, "sock");

    /// <summary>The data directory (<c>initdb -D</c>).</summary>
    public string DataDirectory => Path.Combine(Root, "data");

    /// <summary>The server's log (<c>pg_ctl -l</c>); its tail is included in start and stop failures.</summary>
    public string LogFile => Path.Combine(Root, "postgres.log");

    /// <summary>True between a successful <see cref="StartAsync"/> and <see cref="StopAsync"/> (as this object knows it).</summary>
    public bool IsRunning { get; private set; }

    /// <summary>An Npgsql connection string for <paramref name="database"/> over TCP.</summary>
    public string ConnectionString(string database = "postgres") => $"Host={Host};Port={Port};Username={User};Database={database}";

    /// <summary>The same as a <c>postgres://</c> URL.</summary>
    public string Url(string database = "postgres") => $"postgres://{User}@{Host}:{Port}/{database}";

    /// <summary>
    /// Creates the cluster and starts it (or, without PostgreSQL and CI, does nothing: the tests using it are skipped).
    /// </summary>
    public async Task InitializeAsync()
    {
        var installation = Found.Value;
        if (installation.Missing is { } why)
        {
            if (IsCi) throw new InvalidOperationException($"PostgreSQL is needed for these tests and CI=true: {why}. Install it: apt-get install -y postgresql");
            return;
        }

        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the PostgreSQL test server is for Linux and macOS");
        string baseDirectory = installation.AsServerAccount ? "/tmp" : Path.GetTempPath();
        _root = Path.Combine(baseDirectory, "dydit-pg-" + Guid.NewGuid().ToString("N")[..10]);
        // 0755 all the way: the server account must reach the socket and data folders under a root-owned parent.
        const UnixFileMode open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead |
                                  UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(_root, open);
        Directory.CreateDirectory(SocketDirectory, open);
        try
        {
            if (installation.AsServerAccount)
                await RunCheckedAsync("chown", ["-R", $"{ServerAccount}:", _root], asServer: false, "chown the server directory").ConfigureAwait(false);
            await RunCheckedAsync(installation.Tool("initdb"),
                ["-D", DataDirectory, "-U", User, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], asServer: true, "initdb").ConfigureAwait(false);
            AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
            // A port picked now may be taken before the server binds it; a fresh one is tried then.
            for (int attempt = 1; ; attempt++)
            {
                Port = FreeLoopbackPort();
                try
                {
                    await StartAsync().ConfigureAwait(false);
                    break;
                }
                catch (InvalidOperationException) when (attempt < 3)
                {
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Starts the stopped server again on the same port (a no-op when it runs). Waits until it accepts connections.</summary>
    public async Task StartAsync(CancellationToken cancellation = default)
    {
        var installation = RequireAvailable();
        await _gate.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            // Ask pg_ctl rather than trust the flag: a test may have killed the server behind this object's back.
            if (IsRunning && (await RunAsync(installation.Tool("pg_ctl"), ["-D", DataDirectory, "status"], asServer: true, cancellation).ConfigureAwait(false)).Code == 0)
                return;
            // -F (no fsync) only risks data on an operating-system crash, which a test server does not survive anyway. Commits
            // stay synchronous: an immediate stop (a simulated database crash) must keep every committed transaction.
            string options = $"-k '{SocketDirectory}' -p {Port.ToString(CultureInfo.InvariantCulture)} -c listen_addresses={Host} -F -c max_connections=200";
            // A port just released by a fast stop can still be in the kernel's hands for a moment; try a few times.
            for (int attempt = 1; ; attempt++)
            {
                long logged = File.Exists(LogFile) ? new FileInfo(LogFile).Length : 0;
                var (code, output) = await RunAsync(installation.Tool("pg_ctl"),
                    ["-D", DataDirectory, "-l", LogFile, "-o", options, "-w", "-t", "60", "start"], asServer: true, cancellation).ConfigureAwait(false);
                if (code == 0) break;
                if (attempt == 3 || !LogTail(from: logged).Contains("could not bind", StringComparison.OrdinalIgnoreCase))
                    throw new InvalidOperationException($"pg_ctl start failed ({code}) on port {Port}: {output.Trim()}\n--- {LogFile} ---\n{LogTail()}");
                await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), cancellation).ConfigureAwait(false);
            }

            IsRunning = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Stops the server (a no-op when it is stopped). Fast shutdown cuts open connections and checkpoints, like an operator
    /// restarting the database; <paramref name="immediate"/> ends it without a checkpoint, like a crash (the next start
    /// recovers from the WAL).
    /// </summary>
    public async Task StopAsync(bool immediate = false, CancellationToken cancellation = default)
    {
        var installation = RequireAvailable();
        await _gate.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            await StopCoreAsync(installation, immediate ? "immediate" : "fast", cancellation).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Creates an empty database (named <paramref name="name"/> or a fresh unique name) and returns its name.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null, CancellationToken cancellation = default)
    {
        name ??= "test_" + Guid.NewGuid().ToString("N");
        await PsqlAsync($"CREATE DATABASE {Identifier(name)}", cancellation: cancellation).ConfigureAwait(false);
        return name;
    }

    /// <summary>Drops a database, cutting any connections to it that are still open.</summary>
    public Task DropDatabaseAsync(string name, CancellationToken cancellation = default) =>
        PsqlAsync($"DROP DATABASE IF EXISTS {Identifier(name)} WITH (FORCE)", cancellation: cancellation);

    /// <summary>Runs SQL as the superuser in <paramref name="database"/> through psql and returns its unaligned output.</summary>
    public async Task<string> PsqlAsync(string sql, string database = "postgres", CancellationToken cancellation = default)
    {
        var installation = RequireAvailable();
        var (code, output) = await RunAsync(installation.Tool("psql"),
            ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", Host, "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", User, "-d", database, "-c", sql],
            asServer: false, cancellation).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"psql failed ({code}) running '{sql}': {output.Trim()}");
        return output;
    }

    public async Task DisposeAsync()
    {
        if (_disposed) return;
        if (_root != null && IsRunning)
        {
            try
            {
                await StopCoreAsync(Found.Value, "fast", CancellationToken.None).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // Dispose below stops it harder.
            }
        }

        Dispose();
    }

    /// <summary>Stops the server immediately if it still runs and deletes its directory.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        if (_root == null) return;
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")) && Found.Value.Missing == null)
        {
            try
            {
                StopCoreAsync(Found.Value, "immediate", CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (InvalidOperationException)
            {
                // Deleting the directory below still happens; a server that survived is reported by its own log.
            }
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private async Task StopCoreAsync(Installation installation, string mode, CancellationToken cancellation)
    {
        var (code, output) = await RunAsync(installation.Tool("pg_ctl"), ["-D", DataDirectory, "-m", mode, "-w", "-t", "60", "stop"],
            asServer: true, cancellation).ConfigureAwait(false);
        if (code != 0)
        {
            // pg_ctl status exits 3 when no server runs: then stopping had nothing to do.
            var (status, _) = await RunAsync(installation.Tool("pg_ctl"), ["-D", DataDirectory, "status"], asServer: true, cancellation).ConfigureAwait(false);
            if (status != 3) throw new InvalidOperationException($"pg_ctl stop failed ({code}): {output.Trim()}\n--- {LogFile} ---\n{LogTail()}");
        }

        IsRunning = false;
    }

    private Installation RequireAvailable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var installation = Found.Value;
        if (installation.Missing is { } why) throw new InvalidOperationException($"PostgreSQL is not available: {why}");
        if (_root == null) throw new InvalidOperationException("the PostgreSQL server is not initialised (InitializeAsync was not called)");
        return installation;
    }

    private string Root => _root ?? throw new InvalidOperationException("the PostgreSQL server is not initialised");

    /// <summary>The last lines of the server log written after byte <paramref name="from"/>.</summary>
    private string LogTail(long from = 0)
    {
        try
        {
            using var stream = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            stream.Seek(Math.Min(from, stream.Length), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            string text = reader.ReadToEnd();
            return string.Join('\n', text.Split('\n').TakeLast(20));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    private static string Identifier(string name) =>
        Regex.IsMatch(name, "^[a-z_][a-z0-9_]{0,62}$")
            ? name
            : throw new ArgumentException($"database name '{name}' must be lower-case letters, digits and '_' (at most 63)", nameof(name));

    private static bool IsCi => Environment.GetEnvironmentVariable("CI") == "true";

    private static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task RunCheckedAsync(string file, string[] arguments, bool asServer, string what)
    {
        var (code, output) = await RunAsync(file, arguments, asServer, CancellationToken.None).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"{what} failed ({code}): {output.Trim()}");
    }

    /// <summary>Runs a program (as the server account when <paramref name="asServer"/> and we are root); returns exit code and output.</summary>
    private static async Task<(int Code, string Output)> RunAsync(string file, string[] arguments, bool asServer, CancellationToken cancellation)
    {
        var installation = Found.Value;
        var start = asServer && installation.AsServerAccount
            ? new ProcessStartInfo(installation.Runuser!, ["-u", ServerAccount, "--", file, .. arguments])
            : new ProcessStartInfo(file, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        // Somewhere every account may enter: the server account cannot necessarily read the test's working directory.
        start.WorkingDirectory = "/";
        // libpq and the server tools read PG* variables (PGHOST, PGDATA, PGPASSWORD, …); the tests' settings are explicit.
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList()) start.Environment.Remove(key);
        start.Environment["LC_ALL"] = "C";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        limit.CancelAfter(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            if (cancellation.IsCancellationRequested) throw;
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} did not finish within {CommandTimeout}");
        }

        return (process.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
    }

    /// <summary>Where the binaries are and how to run them, or why they cannot be.</summary>
    private sealed record Installation(string? BinDirectory, string? Psql, bool AsServerAccount, string? Runuser, string? Missing)
    {
        public string Tool(string name) => name == "psql" ? Psql! : Path.Combine(BinDirectory!, name);
    }

    /// <summary><see cref="BinDirectoryVariable"/> if set, else <c>pg_config --bindir</c>, else the newest /usr/lib/postgresql/*/bin, else the folder of initdb on PATH.</summary>
    private static Installation FindInstallation()
    {
        if (OperatingSystem.IsWindows()) return new Installation(null, null, false, null, "the PostgreSQL test server is for Linux and macOS");
        static bool HasServer(string dir) => new[] { "initdb", "pg_ctl", "postgres" }.All(t => File.Exists(Path.Combine(dir, t)));

        var candidates = Environment.GetEnvironmentVariable(BinDirectoryVariable) is { Length: > 0 } chosen ? [chosen] : SearchBinDirectories();
        string? bin = candidates.FirstOrDefault(HasServer);
        if (bin == null)
            return new Installation(null, null, false, null,
                $"initdb, pg_ctl and postgres not found (looked in: {string.Join(", ", candidates.Distinct())}; " +
                $"the search is {BinDirectoryVariable}, else pg_config --bindir, /usr/lib/postgresql/*/bin, PATH)");
        string? psql = File.Exists(Path.Combine(bin, "psql")) ? Path.Combine(bin, "psql") : OnPath("psql");
        if (psql == null) return new Installation(bin, null, false, null, $"psql not found in {bin} or on PATH");
        if (!RunningAsRoot()) return new Installation(bin, psql, false, null, null);
        string? runuser = new[] { "/usr/sbin/runuser", "/sbin/runuser" }.FirstOrDefault(File.Exists) ?? OnPath("runuser");
        if (runuser == null) return new Installation(bin, psql, true, null, "running as root, and runuser (to run PostgreSQL as another user) is not found");
        bool account = File.ReadLines("/etc/passwd").Any(line => line.StartsWith(ServerAccount + ":", StringComparison.Ordinal));
        return account
            ? new Installation(bin, psql, true, runuser, null)
            : new Installation(bin, psql, true, runuser, $"running as root, and there is no '{ServerAccount}' user to run PostgreSQL as");
    }

    private static List<string> SearchBinDirectories()
    {
        var candidates = new List<string>();
        if (PgConfigBinDirectory() is { } configured) candidates.Add(configured);
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Dir: d, Version: double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : -1))
                .OrderByDescending(d => d.Version)
                .Select(d => Path.Combine(d.Dir, "bin")));
        }

        if (OnPath("initdb") is { } initdb)
            candidates.Add(Path.GetDirectoryName(new FileInfo(initdb).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? initdb)!);
        return candidates;
    }

    private static string? PgConfigBinDirectory()
    {
        if (OnPath("pg_config") is not { } pgConfig) return null;
        try
        {
            using var process = Process.Start(new ProcessStartInfo(pgConfig, ["--bindir"]) { RedirectStandardOutput = true, RedirectStandardError = true });
            if (process == null) return null;
            string output = process.StandardOutput.ReadToEnd();
            return process.WaitForExit(10_000) && process.ExitCode == 0 ? output.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string? OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, tool))
        .FirstOrDefault(File.Exists);

    /// <summary>The effective uid from /proc (Linux), else the user name: PostgreSQL checks the effective uid.</summary>
    private static bool RunningAsRoot()
    {
        try
        {
            string? uid = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            if (uid != null) return uid.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[2] == "0";
        }
        catch (IOException)
        {
        }

        return Environment.UserName == "root";
    }
}

/// <summary>
/// A fact that needs <see cref="PostgresServer"/>: skipped with the reason when PostgreSQL is missing, except under
/// CI=true, where it runs (and fails in the fixture) so a CI run cannot pass by skipping.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (PostgresServer.SkipReason is { } why) Skip = why;
    }
}
