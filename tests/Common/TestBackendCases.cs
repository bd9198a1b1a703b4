using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// Theory rows crossed with <see cref="TestBackends.Devices"/>: every existing case runs on every backend, the device
/// name first — <c>(device, case…)</c>. For tests that had <c>InlineData</c> or <c>MemberData</c> rows before they were
/// parametrized over backends:
/// <c>public static TheoryData&lt;string, string&gt; Cases => TestBackendCases.Cross(new TheoryData&lt;string&gt; { "a", "b" });</c>
/// </summary>
public static class TestBackendCases
{
    private static IEnumerable<string> Devices() => Rows(TestBackends.Devices).Select(row => (string)row[0]);

    // the untyped rows (TheoryData<T> alone also enumerates its typed values)
    private static IEnumerable<object[]> Rows(TheoryData data) => data;

    public static TheoryData<string, T1> Cross<T1>(TheoryData<T1> cases)
    {
        var crossed = new TheoryData<string, T1>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!);
        return crossed;
    }

    public static TheoryData<string, T1, T2> Cross<T1, T2>(TheoryData<T1, T2> cases)
    {
        var crossed = new TheoryData<string, T1, T2>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!, (T2)row[1]!);
        return crossed;
    }

    public static TheoryData<string, T1, T2, T3> Cross<T1, T2, T3>(TheoryData<T1, T2, T3> cases)
    {
        var crossed = new TheoryData<string, T1, T2, T3>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!, (T2)row[1]!, (T3)row[2]!);
        return crossed;
    }

    public static TheoryData<string, T1, T2, T3, T4> Cross<T1, T2, T3, T4>(TheoryData<T1, T2, T3, T4> cases)
    {
        var crossed = new TheoryData<string, T1, T2, T3, T4>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!, (T2)row[1]!, (T3)row[2]!, (T4)row[3]!);
        return crossed;
    }

    public static TheoryData<string, T1, T2, T3, T4, T5> Cross<T1, T2, T3, T4, T5>(TheoryData<T1, T2, T3, T4, T5> cases)
    {
        var crossed = new TheoryData<string, T1, T2, T3, T4, T5>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!, (T2)row[1]!, (T3)row[2]!, (T4)row[3]!, (T5)row[4]!);
        return crossed;
    }

    public static TheoryData<string, T1, T2, T3, T4, T5, T6> Cross<T1, T2, T3, T4, T5, T6>(TheoryData<T1, T2, T3, T4, T5, T6> cases)
    {
        var crossed = new TheoryData<string, T1, T2, T3, T4, T5, T6>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!, (T2)row[1]!, (T3)row[2]!, (T4)row[3]!, (T5)row[4]!, (T6)row[5]!);
        return crossed;
    }

    public static TheoryData<string, T1, T2, T3, T4, T5, T6, T7> Cross<T1, T2, T3, T4, T5, T6, T7>(TheoryData<T1, T2, T3, T4, T5, T6, T7> cases)
    {
        var crossed = new TheoryData<string, T1, T2, T3, T4, T5, T6, T7>();
        foreach (var device in Devices())
            foreach (var row in Rows(cases))
                crossed.Add(device, (T1)row[0]!, (T2)row[1]!, (T3)row[2]!, (T4)row[3]!, (T5)row[4]!, (T6)row[5]!, (T7)row[6]!);
        return crossed;
    }
}
