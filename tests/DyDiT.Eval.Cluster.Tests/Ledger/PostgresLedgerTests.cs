using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Tests.Common;
using Npgsql;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests.Ledger;

/// <summary>The ledger contract on a fresh database (per test) of the collection's throw-away PostgreSQL server.</summary>
[Collection(PostgresCollection.Name), RequiresPostgres]
public sealed class PostgresLedgerContractTests(PostgresServer server) : LedgerContractTests
{
    private string? _database;

    private string ConnectionString => server.ConnectionString(_database ?? throw new InvalidOperationException("no database yet"));

    protected override async Task CreateStoreAsync() => _database = await server.CreateDatabaseAsync();

    protected override ILedger CreateLedger() => new PostgresLedger(ConnectionString);

    protected override async Task ExecuteSqlAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    protected override async Task DeleteStoreAsync()
    {
        if (_database != null) await server.DropDatabaseAsync(_database);
    }
}

/// <summary>What is particular to the PostgreSQL ledger: URLs, unreachable servers, a server restart.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresLedgerTests(PostgresServer server)
{
    [PostgresFact]
    public async Task A_url_with_a_password_opens_the_ledger_and_the_description_hides_the_password()
    {
        string database = await server.CreateDatabaseAsync();
        try
        {
            // Trust authentication ignores the password; it is here to prove it never shows.
            string url = $"postgresql://{PostgresServer.User}:s3cr%3At@{PostgresServer.Host}:{server.Port}/{database}?sslmode=disable&application_name=ledger-test";
            await using var ledger = await Ledgers.OpenAsync(url);
            Assert.IsType<PostgresLedger>(ledger);
            Assert.Equal($"postgresql://{PostgresServer.User}@{PostgresServer.Host}:{server.Port}/{database}", ledger.Description);
            Assert.Empty(await ledger.ListRunsAsync());
            Assert.DoesNotContain("s3cr", Ledgers.Redact(url));
        }
        finally
        {
            await server.DropDatabaseAsync(database);
        }
    }

    [PostgresFact]
    public async Task Calls_fail_with_npgsql_exceptions_while_the_server_is_down_and_work_again_after_a_restart()
    {
        string database = await server.CreateDatabaseAsync();
        try
        {
            await using var ledger = await Ledgers.OpenAsync(server.ConnectionString(database));
            await ledger.RegisterRunAsync(new RunRecord("r", "r", "{}", "/data/r", 3, 1, DateTimeOffset.UtcNow));
            Assert.NotNull(await ledger.ClaimAsync("w1", "r", TimeSpan.FromMinutes(5)));

            await server.StopAsync(immediate: true);
            Assert.False(server.IsRunning);
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => ledger.ClaimAsync("w1", "r", TimeSpan.FromMinutes(5)));
            await server.StartAsync();
            Assert.True(server.IsRunning);

            // Pooled connections cut by the stop fail once each; callers retry, as workers do.
            ShardLease? lease = null;
            for (int attempt = 0; lease == null; attempt++)
            {
                try
                {
                    lease = await ledger.ClaimAsync("w1", "r", TimeSpan.FromMinutes(5));
                }
                catch (NpgsqlException) when (attempt < 5)
                {
                }
            }

            Assert.Equal(1, lease.ShardIndex);
        }
        finally
        {
            if (!server.IsRunning) await server.StartAsync();
            await server.DropDatabaseAsync(database);
        }
    }
}
