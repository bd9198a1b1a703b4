using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace DyDiT.Eval.Cluster.Ledger;

/// <summary>
/// The two ways users name a PostgreSQL ledger: a libpq-style URL
/// (<c>postgres[ql]://[user[:password]@][host][:port][,host2[:port2]…][/database][?param=value&amp;…]</c>) and an Npgsql
/// connection string (<c>Host=…;Username=…;…</c>). URLs are what operators copy from their database provider, Npgsql
/// only understands connection strings, so URLs are translated here; passwords must never reach logs, so redaction lives
/// next to the parser and uses the same idea of where the password is.
/// </summary>
internal static partial class PostgresLocation
{
    public const int DefaultPort = 5432;
    private const string Hidden = "***";

    public static bool IsUrl(string location) =>
        location.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        location.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase);

    /// <summary>The Npgsql connection string for a URL; a connection string is checked and returned unchanged.</summary>
    public static string ToConnectionString(string location)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(location);
        location = location.Trim();
        if (!IsUrl(location))
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(location);
            }
            catch (ArgumentException e)
            {
                throw new LedgerException($"'{Redact(location)}' is not a valid PostgreSQL connection string: {e.Message}", e);
            }

            return location;
        }

        var url = Split(location);
        var builder = new NpgsqlConnectionStringBuilder();
        if (url.UserInfo is { } userInfo)
        {
            int colon = userInfo.IndexOf(':');
            builder.Username = Decode(colon < 0 ? userInfo : userInfo[..colon]);
            if (colon >= 0) builder.Password = Decode(userInfo[(colon + 1)..]);
        }

        SetHosts(builder, url.Hosts, location);
        if (url.Path.Length > 0) builder.Database = Decode(url.Path);
        foreach (var (key, value) in url.Query) SetParameter(builder, key, value, location);
        if (string.IsNullOrEmpty(builder.Host))
            throw new LedgerException($"'{Redact(location)}' names no host: write postgres://user@HOST:5432/db, or ?host=/socket/dir for a unix socket");
        return builder.ConnectionString;
    }

    /// <summary>The location with every password (URL user info, <c>password=</c> parameters or keywords) replaced by ***.</summary>
    public static string Redact(string location)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!IsUrl(location)) return ConnectionStringPassword().Replace(location, m => m.Groups["key"].Value + Hidden);

        int start = location.IndexOf("://", StringComparison.Ordinal) + 3;
        int queryStart = location.IndexOf('?', start);
        int at = location.LastIndexOf('@', queryStart < 0 ? location.Length - 1 : queryStart - 1, (queryStart < 0 ? location.Length : queryStart) - start);
        var text = new StringBuilder(location);
        if (queryStart >= 0)
        {
            string query = location[(queryStart + 1)..];
            text.Length = queryStart + 1;
            text.Append(string.Join('&', query.Split('&').Select(pair =>
            {
                int equals = pair.IndexOf('=');
                return equals >= 0 && IsPasswordKey(Uri.UnescapeDataString(pair[..equals])) ? pair[..(equals + 1)] + Hidden : pair;
            })));
        }

        if (at >= 0)
        {
            int colon = location.IndexOf(':', start, at - start);
            if (colon >= 0) text.Remove(colon + 1, at - colon - 1).Insert(colon + 1, Hidden);
        }

        return text.ToString();
    }

    /// <summary>A short, password-free name for messages: <c>postgresql://user@host:port/database</c>.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder builder)
    {
        string user = builder.Username is { Length: > 0 } u ? Uri.EscapeDataString(u) + "@" : "";
        string host = builder.Host ?? "";
        string database = Uri.EscapeDataString(builder.Database ?? "");
        return host.StartsWith('/')
            ? $"postgresql://{user}/{database}?host={host}&port={builder.Port}"
            : $"postgresql://{user}{host}:{builder.Port}/{database}";
    }

    private sealed record Url(string? UserInfo, string Hosts, string Path, List<(string Key, string Value)> Query);

    /// <summary>
    /// Splits a URL. The user info ends at the last '@' before the query, not at the first '/', so a password with an
    /// unescaped '/' is still treated (and redacted) as a password rather than leaking into the host.
    /// </summary>
    private static Url Split(string location)
    {
        string rest = location[(location.IndexOf("://", StringComparison.Ordinal) + 3)..];
        int fragment = rest.IndexOf('#');
        if (fragment >= 0) rest = rest[..fragment];
        string query = "";
        int queryStart = rest.IndexOf('?');
        if (queryStart >= 0) (rest, query) = (rest[..queryStart], rest[(queryStart + 1)..]);
        string? userInfo = null;
        int at = rest.LastIndexOf('@');
        if (at >= 0) (userInfo, rest) = (rest[..at], rest[(at + 1)..]);
        int slash = rest.IndexOf('/');
        string hosts = slash < 0 ? rest : rest[..slash];
        string path = slash < 0 ? "" : rest[(slash + 1)..];
        var parameters = new List<(string, string)>();
        foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = pair.IndexOf('=');
            if (equals <= 0) throw new LedgerException($"'{Redact(location)}': query parameter '{pair}' needs the form name=value");
            parameters.Add((Decode(pair[..equals]), Decode(pair[(equals + 1)..])));
        }

        return new Url(userInfo, hosts, path, parameters);
    }

    /// <summary>One host (with optional port) goes to Host and Port; several are handed to Npgsql as its host list.</summary>
    private static void SetHosts(NpgsqlConnectionStringBuilder builder, string hosts, string location)
    {
        builder.Port = DefaultPort;
        if (hosts.Length == 0) return;
        var parsed = hosts.Split(',').Select(h => SplitHostPort(h, location)).ToList();
        if (parsed.Count == 1)
        {
            builder.Host = parsed[0].Host;
            if (parsed[0].Port is { } port) builder.Port = port;
        }
        else
        {
            builder.Host = string.Join(',', parsed.Select(p => p.Port is { } port ? $"{Bracketed(p.Host)}:{port}" : Bracketed(p.Host)));
        }
    }

    private static string Bracketed(string host) => host.Contains(':') ? $"[{host}]" : host;

    private static (string Host, int? Port) SplitHostPort(string text, string location)
    {
        string host = text, port = "";
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0) throw new LedgerException($"'{Redact(location)}': unclosed '[' in host '{text}'");
            host = text[1..close];
            if (close + 1 < text.Length)
            {
                if (text[close + 1] != ':') throw new LedgerException($"'{Redact(location)}': unexpected text after ']' in host '{text}'");
                port = text[(close + 2)..];
            }
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon >= 0) (host, port) = (text[..colon], text[(colon + 1)..]);
        }

        host = Decode(host);
        if (host.Length == 0) throw new LedgerException($"'{Redact(location)}': empty host in '{text}'");
        return (host, port.Length == 0 ? null : ParsePort(port, location));
    }

    private static int ParsePort(string text, string location) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and <= 65535
            ? port
            : throw new LedgerException($"'{Redact(location)}': port '{text}' is not a number from 1 to 65535");

    /// <summary>libpq's URL parameters that have a different name (or value spelling) in Npgsql; others pass through as Npgsql keywords.</summary>
    private static void SetParameter(NpgsqlConnectionStringBuilder builder, string key, string value, string location)
    {
        try
        {
            switch (key)
            {
                case "host": builder.Host = value; break;
                case "hostaddr": builder.Host = value; break;
                case "port": builder.Port = ParsePort(value, location); break;
                case "user": builder.Username = value; break;
                case "password": builder.Password = value; break;
                case "dbname": builder.Database = value; break;
                case "sslmode": builder.SslMode = ParseSslMode(value, location); break;
                case "sslrootcert": builder.RootCertificate = value; break;
                case "sslcert": builder.SslCertificate = value; break;
                case "sslkey": builder.SslKey = value; break;
                case "sslpassword": builder.SslPassword = value; break;
                case "connect_timeout": builder.Timeout = int.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture); break;
                case "application_name": builder.ApplicationName = value; break;
                case "target_session_attrs": builder.TargetSessionAttributes = value; break;
                case "options": builder.Options = value; break;
                default: builder[key] = value; break;
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            throw new LedgerException($"'{Redact(location)}': parameter '{key}' is not usable ({e.Message}); " +
                "libpq names (sslmode, host, port, user, password, dbname, connect_timeout, application_name, …) or Npgsql keywords work", e);
        }
    }

    private static SslMode ParseSslMode(string value, string location) => value.ToLowerInvariant() switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "prefer" => SslMode.Prefer,
        "require" => SslMode.Require,
        "verify-ca" or "verifyca" => SslMode.VerifyCA,
        "verify-full" or "verifyfull" => SslMode.VerifyFull,
        _ => throw new LedgerException($"'{Redact(location)}': sslmode '{value}' is not one of disable, allow, prefer, require, verify-ca, verify-full"),
    };

    private static string Decode(string text) => Uri.UnescapeDataString(text);

    private static bool IsPasswordKey(string key)
    {
        string k = key.Replace(" ", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal);
        return k.Equals("password", StringComparison.OrdinalIgnoreCase) || k.Equals("pwd", StringComparison.OrdinalIgnoreCase) ||
            k.Equals("sslpassword", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Password, PWD or SSL Password keywords with a plain, '…' or "…" value, at the start or after a ';'.</summary>
    [GeneratedRegex("""(?<key>(?:^|;)\s*(?:password|pwd|ssl\s*password)\s*=\s*)(?:"(?:[^"]|"")*"|'(?:[^']|'')*'|[^;]*)""",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ConnectionStringPassword();
}
