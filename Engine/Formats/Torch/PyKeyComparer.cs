namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>Value equality for the things a pickle can use as dict keys (str, int, float, bool, bytes, tuples).</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object?>
{
    public static PyKeyComparer Instance { get; } = new();

    public new bool Equals(object? x, object? y)
    {
        if (ReferenceEquals(x, y)) return true;
        if (x is null || y is null) return false;
        if (x is byte[] a && y is byte[] b) return a.AsSpan().SequenceEqual(b);
        return x.Equals(y);
    }

    public int GetHashCode(object? obj) => obj switch
    {
        null => 0,
        byte[] b => b.Length == 0 ? 1 : HashCode.Combine(b.Length, b[0], b[^1]),
        PyTuple t => t.GetHashCode(),
        string or long or double or bool or System.Numerics.BigInteger => obj.GetHashCode(),
        _ => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj),
    };

    /// <summary>Whether Python would accept the value as a dict key (lists, dicts and tensors are unhashable here).</summary>
    public static bool IsHashable(object? obj) => obj switch
    {
        string or long or double or bool or byte[] or System.Numerics.BigInteger => true,
        PyTuple t => t.All(IsHashable),
        _ => false,
    };
}
