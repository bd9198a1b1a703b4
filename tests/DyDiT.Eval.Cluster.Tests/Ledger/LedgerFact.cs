using DyDiT.Eval.Tests.Common;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace DyDiT.Eval.Cluster.Tests.Ledger;

/// <summary>
/// A fact in <see cref="LedgerContractTests"/>. The same test methods run for every ledger, but only the PostgreSQL
/// subclass needs a server, and xunit 2 decides skipping per method attribute, not per class. So this fact's test case
/// looks at the concrete test class: one marked <see cref="RequiresPostgresAttribute"/> is skipped when
/// <see cref="PostgresServer.SkipReason"/> says so.
/// </summary>
[XunitTestCaseDiscoverer("DyDiT.Eval.Cluster.Tests.Ledger.LedgerFactDiscoverer", "DyDiT.Eval.Cluster.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class LedgerFactAttribute : FactAttribute;

/// <summary>Marks a test class whose <see cref="LedgerFactAttribute"/> tests need the PostgreSQL server.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class RequiresPostgresAttribute : Attribute;

public sealed class LedgerFactDiscoverer(IMessageSink diagnosticMessageSink) : FactDiscoverer(diagnosticMessageSink)
{
    protected override IXunitTestCase CreateTestCase(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute) =>
        new LedgerTestCase(DiagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod);
}

public sealed class LedgerTestCase : XunitTestCase
{
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public LedgerTestCase()
    {
    }

    public LedgerTestCase(IMessageSink diagnosticMessageSink, TestMethodDisplay defaultMethodDisplay, TestMethodDisplayOptions defaultMethodDisplayOptions,
        ITestMethod testMethod)
        : base(diagnosticMessageSink, defaultMethodDisplay, defaultMethodDisplayOptions, testMethod)
    {
    }

    protected override string GetSkipReason(IAttributeInfo factAttribute) =>
        base.GetSkipReason(factAttribute) ??
        (TestMethod.TestClass.Class.GetCustomAttributes(typeof(RequiresPostgresAttribute)).Any() ? PostgresServer.SkipReason! : null!);
}

/// <summary>One PostgreSQL server for every test class in the collection (its classes run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
