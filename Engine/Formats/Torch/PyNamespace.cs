namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>An <c>argparse.Namespace</c> (the <c>args</c> entry of training checkpoints): its attributes in pickle order.</summary>
public sealed class PyNamespace
{
    private readonly OrderedDictionary<string, object?> _fields = new(StringComparer.Ordinal);

    internal PyNamespace()
    {
    }

    public IReadOnlyList<KeyValuePair<string, object?>> Fields => _fields.ToList();

    public object? this[string name] => _fields.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"argparse.Namespace has no attribute '{name}'");

    public bool TryGetValue(string name, out object? value) => _fields.TryGetValue(name, out value);

    internal int Count => _fields.Count;

    internal void Set(string name, object? value) => _fields[name] = value;

    internal void SetAt(int index, object? value) => _fields.SetAt(index, value);

    internal KeyValuePair<string, object?> GetAt(int index) => _fields.GetAt(index);

    public override string ToString() => "Namespace(" + string.Join(", ", _fields.Select(f => $"{f.Key}={f.Value}")) + ")";
}
