namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// Theory data for a test that already has cases: every case on every device of <see cref="TestBackends.Devices"/>, the
/// device first. Use as <c>public static IEnumerable&lt;object[]&gt; XCases =&gt; DeviceCases.Cross([1, 2], [3, 4]);</c>
/// with <c>[Theory, MemberData(nameof(XCases))]</c> and a <c>string device</c> first parameter.
/// </summary>
public static class DeviceCases
{
    public static IEnumerable<object[]> Cross(params object[][] cases) => Over(cases);

    /// <summary>The same for cases kept in their own member (e.g. a <c>TheoryData</c> other tests use as it is).</summary>
    public static IEnumerable<object[]> Over(IEnumerable<object[]> cases)
    {
        foreach (object[] row in (IEnumerable<object[]>)TestBackends.Devices)
            foreach (var c in cases)
                yield return [row[0], .. c];
    }
}
