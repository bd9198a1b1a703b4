using System.Collections;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>A Python tuple from a pickle. Compares and hashes by value, so it can key a <see cref="PyDict"/>.</summary>
public sealed class PyTuple : IReadOnlyList<object?>, IEquatable<PyTuple>
{
    private readonly object?[] _items;
    private readonly int _hash;

    internal PyTuple(object?[] items)
    {
        _items = items;
        var h = new HashCode();
        h.Add(items.Length);
        int depth = 0;
        foreach (var item in items)
        {
            h.Add(PyKeyComparer.Instance.GetHashCode(item));
            if (item is PyTuple t) depth = Math.Max(depth, t.Depth);
        }
        _hash = h.ToHashCode();
        Depth = depth + 1;
    }

    /// <summary>Nesting depth of tuples inside tuples (1 for a flat tuple); bounded by the unpickler.</summary>
    internal int Depth { get; }

    public static PyTuple Empty { get; } = new([]);

    public int Count => _items.Length;

    public object? this[int index] => _items[index];

    internal void Set(int index, object? value) => _items[index] = value;

    public IEnumerator<object?> GetEnumerator() => ((IEnumerable<object?>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    public bool Equals(PyTuple? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        if (_hash != other._hash || _items.Length != other._items.Length) return false;
        for (int i = 0; i < _items.Length; i++)
            if (!PyKeyComparer.Instance.Equals(_items[i], other._items[i])) return false;
        return true;
    }

    public override bool Equals(object? obj) => obj is PyTuple t && Equals(t);

    public override int GetHashCode() => _hash;

    public override string ToString() => "(" + string.Join(", ", _items.Select(i => i?.ToString() ?? "None")) + (_items.Length == 1 ? ",)" : ")");
}
