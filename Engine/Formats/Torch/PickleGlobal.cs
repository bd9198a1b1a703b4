namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// A class or function named by a pickle's GLOBAL/STACK_GLOBAL that is on the allow-list. Nothing is
/// imported or called: the unpickler recognises these names and builds the equivalent data itself.
/// </summary>
public sealed class PickleGlobal
{
    private static readonly Dictionary<string, PickleGlobal> Allowed = Build();

    private PickleGlobal(string module, string name, GlobalKind kind, DType storageType = default)
    {
        Module = module;
        Name = name;
        Kind = kind;
        StorageType = storageType;
    }

    public string Module { get; }

    public string Name { get; }

    internal GlobalKind Kind { get; }

    /// <summary>Element type of a <c>torch.*Storage</c> class.</summary>
    internal DType StorageType { get; }

    public override string ToString() => Module + "." + Name;

    /// <summary>The allow-listed global, or null when <paramref name="module"/>.<paramref name="name"/> is not accepted.</summary>
    internal static PickleGlobal? Find(string module, string name) => Allowed.GetValueOrDefault(module + "\n" + name);

    private static Dictionary<string, PickleGlobal> Build()
    {
        var list = new List<PickleGlobal>
        {
            new("collections", "OrderedDict", GlobalKind.OrderedDict),
            new("torch._utils", "_rebuild_tensor_v2", GlobalKind.RebuildTensorV2),
            new("torch._utils", "_rebuild_parameter", GlobalKind.RebuildParameter),
            new("argparse", "Namespace", GlobalKind.Namespace),
        };
        (string, DType)[] storages =
        [
            ("FloatStorage", DType.Float32), ("HalfStorage", DType.Float16), ("BFloat16Storage", DType.BFloat16),
            ("DoubleStorage", DType.Float64), ("LongStorage", DType.Int64), ("IntStorage", DType.Int32),
            ("ShortStorage", DType.Int16), ("CharStorage", DType.Int8), ("ByteStorage", DType.UInt8),
            ("BoolStorage", DType.Bool),
        ];
        foreach (var (name, dtype) in storages) list.Add(new("torch", name, GlobalKind.Storage, dtype));
        return list.ToDictionary(g => g.Module + "\n" + g.Name, StringComparer.Ordinal);
    }
}

internal enum GlobalKind
{
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Namespace,
    Storage,
}
