using System.Net;
using System.Net.Sockets;
using DyDiT.Eval.Cluster.Ledger;
using Npgsql;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests.Ledger;

/// <summary>PostgreSQL URLs and connection strings: translation to Npgsql, password redaction, an unreachable server (no server needed).</summary>
public sealed class PostgresLocationTests
{
    [Theory]
    [InlineData("postgres://alice:s3cret@db.example:5433/ledger?sslmode=require", "postgres://alice:***@db.example:5433/ledger?sslmode=require")]
    [InlineData("postgresql://alice:p%40ss%2Fw@db/ledger", "postgresql://alice:***@db/ledger")]
    [InlineData("postgresql://alice:pa/ss@word@db/ledger", "postgresql://alice:***@db/ledger")]
    [InlineData("postgres://alice@db/ledger?password=s3cret&sslmode=require", "postgres://alice@db/ledger?password=***&sslmode=require")]
    [InlineData("postgres://alice@db/ledger", "postgres://alice@db/ledger")]
    [InlineData("postgres://db/ledger?host=/run/postgresql", "postgres://db/ledger?host=/run/postgresql")]
    [InlineData("Host=db;Username=alice;Password=s3cret;Database=ledger", "Host=db;Username=alice;Password=***;Database=ledger")]
    [InlineData("Host=db; password = \"s3;cret\" ;Database=ledger", "Host=db; password = *** ;Database=ledger")]
    [InlineData("Host=db;PWD=s3cret", "Host=db;PWD=***")]
    [InlineData("Password=s3cret;Host=db;SSL Password=k3y", "Password=***;Host=db;SSL Password=***")]
    [InlineData("Host=db;Username=alice", "Host=db;Username=alice")]
    public void Redact_hides_every_password(string location, string expected)
    {
        Assert.Equal(expected, PostgresLedger.Redact(location));
        Assert.Equal(expected, Ledgers.Redact(location));
    }

    [Fact]
    public void A_url_becomes_an_npgsql_connection_string_with_decoded_credentials()
    {
        var b = Parse("postgresql://al%20ice:p%40ss%3Aw%2Frd@db.example.org:6000/my%20ledger?sslmode=verify-full&application_name=dydit&connect_timeout=7");
        Assert.Equal(("db.example.org", 6000, "my ledger", "al ice", "p@ss:w/rd"), (b.Host, b.Port, b.Database, b.Username, b.Password));
        Assert.Equal((SslMode.VerifyFull, "dydit", 7), (b.SslMode, b.ApplicationName, b.Timeout));
    }

    [Fact]
    public void The_port_defaults_to_5432_and_ipv6_hosts_lose_their_brackets()
    {
        var b = Parse("postgres://bob@db/ledger");
        Assert.Equal(("db", 5432, "ledger", "bob", (string?)null), (b.Host, b.Port, b.Database, b.Username, b.Password));
        var v6 = Parse("postgres://bob@[::1]:5433/ledger");
        Assert.Equal(("::1", 5433), (v6.Host, v6.Port));
    }

    [Fact]
    public void A_unix_socket_directory_can_be_given_as_the_host_parameter()
    {
        var b = Parse("postgresql://bob@/ledger?host=/var/run/postgresql&port=5439");
        Assert.Equal(("/var/run/postgresql", 5439, "ledger", "bob"), (b.Host, b.Port, b.Database, b.Username));
        var encoded = Parse("postgresql://%2Fvar%2Frun%2Fpostgresql/ledger");
        Assert.Equal(("/var/run/postgresql", 5432), (encoded.Host, encoded.Port));
    }

    [Fact]
    public void Several_hosts_go_to_npgsqls_host_list()
    {
        var b = Parse("postgres://bob@db1:5433,db2/ledger?target_session_attrs=primary");
        Assert.Equal(("db1:5433,db2", "primary"), (b.Host, b.TargetSessionAttributes));
    }

    [Fact]
    public void A_connection_string_passes_through_unchanged()
    {
        const string cs = "Host=db;Port=5433;Username=alice;Password=s3cret;Database=ledger";
        Assert.Equal(cs, PostgresLedger.ToConnectionString(cs));
        Assert.True(Ledgers.IsPostgres(cs));
    }

    [Theory]
    [InlineData("postgres://alice:s3cret@db:port/ledger", "port")]
    [InlineData("postgres://alice:s3cret@db/ledger?sslmode=sometimes", "sslmode")]
    [InlineData("postgres://alice:s3cret@db/ledger?frobnicate=1", "frobnicate")]
    [InlineData("postgres://alice:s3cret@/ledger", "no host")]
    [InlineData("Host=db;Password=s3cret;Frobnicate=1", "not a valid")]
    public void A_malformed_location_is_a_ledger_exception_without_the_password(string location, string mentioned)
    {
        var e = Assert.Throws<LedgerException>(() => PostgresLedger.ToConnectionString(location));
        Assert.Contains(mentioned, e.Message);
        Assert.DoesNotContain("s3cret", e.Message);
    }

    [Fact]
    public async Task An_unreachable_server_is_a_ledger_exception_with_the_location_and_no_password()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var e = await Assert.ThrowsAsync<LedgerException>(() => Ledgers.OpenAsync($"postgres://alice:s3cret@127.0.0.1:{port}/ledger?connect_timeout=5"));
        Assert.Contains($"postgresql://alice@127.0.0.1:{port}/ledger", e.Message);
        Assert.DoesNotContain("s3cret", e.Message);
        Assert.IsAssignableFrom<NpgsqlException>(e.InnerException);
    }

    private static NpgsqlConnectionStringBuilder Parse(string url) => new(PostgresLedger.ToConnectionString(url));
}
