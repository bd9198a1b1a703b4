using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// A Python <c>dict</c> or <c>collections.OrderedDict</c> from a pickle, in insertion order (which for a state
/// dict is the module's parameter order). Keys are <see cref="string"/>, <see cref="long"/>, <see cref="double"/>,
/// <see cref="bool"/>, <c>byte[]</c> or <see cref="PyTuple"/>.
/// </summary>
public sealed class PyDict : IReadOnlyDictionary<object, object?>
{
    private readonly OrderedDictionary<object, object?> _items = new(PyKeyComparer.Instance!);

    internal PyDict(bool isOrderedDict) => IsOrderedDict = isOrderedDict;

    /// <summary>True for <c>collections.OrderedDict</c> (what <c>state_dict()</c> returns), false for a plain dict.</summary>
    public bool IsOrderedDict { get; }

    public int Count => _items.Count;

    public object? this[object key] => _items[key];

    /// <summary>The value under a string key; throws <see cref="KeyNotFoundException"/> naming it when absent.</summary>
    public object? this[string key] => _items.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"key '{key}' is not in the dict");

    public IEnumerable<object> Keys => _items.Keys;

    public IEnumerable<object?> Values => _items.Values;

    public bool ContainsKey(object key) => _items.ContainsKey(key);

    public bool TryGetValue(object key, [MaybeNullWhen(false)] out object? value) => _items.TryGetValue(key, out value);

    public IEnumerator<KeyValuePair<object, object?>> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Python's <c>d[key] = value</c>: replaces in place, or appends a new key at the end.</summary>
    internal void Set(object key, object? value) => _items[key] = value;

    internal void SetAt(int index, object? value) => _items.SetAt(index, value);

    internal KeyValuePair<object, object?> GetAt(int index) => _items.GetAt(index);
}
