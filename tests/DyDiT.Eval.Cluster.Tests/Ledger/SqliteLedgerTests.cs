using DyDiT.Eval.Cluster.Ledger;
using Microsoft.Data.Sqlite;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests.Ledger;

/// <summary>The ledger contract on an SQLite file in a fresh temporary directory per test.</summary>
public sealed class SqliteLedgerContractTests : LedgerContractTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("dydit-ledger-").FullName;

    private string FilePath => Path.Combine(_directory, Ledgers.DefaultSqliteFileName);

    protected override Task CreateStoreAsync() => Task.CompletedTask;

    protected override ILedger CreateLedger() => new SqliteLedger(FilePath);

    protected override async Task ExecuteSqlAsync(string sql)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = FilePath, Pooling = false }.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    protected override Task DeleteStoreAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>What is particular to the SQLite ledger: its file, WAL mode, and how it reports a file it cannot use.</summary>
public sealed class SqliteLedgerTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("dydit-ledger-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Opening_creates_the_directory_and_a_wal_mode_file()
    {
        string path = Path.Combine(_directory, "a", "b", Ledgers.DefaultSqliteFileName);
        await using (var ledger = await Ledgers.OpenAsync("sqlite:" + path))
        {
            Assert.IsType<SqliteLedger>(ledger);
            Assert.Equal("sqlite:" + path, ledger.Description);
            Assert.Equal("sqlite:" + path, Ledgers.Redact(path));
        }

        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
        command.CommandText = "SELECT version FROM schema_version";
        Assert.Equal(1L, (long?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_folder_that_cannot_be_created_is_a_ledger_exception()
    {
        string file = Path.Combine(_directory, "plain-file");
        await File.WriteAllTextAsync(file, "");
        var e = await Assert.ThrowsAsync<LedgerException>(() => Ledgers.OpenAsync(Path.Combine(file, Ledgers.DefaultSqliteFileName)));
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_is_a_ledger_exception_naming_it()
    {
        string path = Path.Combine(_directory, "notes.txt");
        await File.WriteAllTextAsync(path, new string('x', 4096));
        var e = await Assert.ThrowsAsync<LedgerException>(() => Ledgers.OpenAsync(path));
        Assert.Contains(path, e.Message);
    }
}
