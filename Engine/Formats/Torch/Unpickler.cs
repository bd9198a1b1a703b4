using System.Globalization;
using System.Numerics;
using System.Text;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// A pickle reader that executes nothing. It understands the opcodes of protocols 0–5 that plain data uses and
/// resolves GLOBAL/STACK_GLOBAL only against a fixed allow-list of state-dict names (<c>collections.OrderedDict</c>,
/// <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>, <c>argparse.Namespace</c>,
/// <c>torch.*Storage</c>); any other global is refused with a <see cref="TensorFileException"/> naming it.
/// Values map to C# as: dict/OrderedDict → <see cref="PyDict"/>, list → <c>List&lt;object?&gt;</c>, tuple →
/// <see cref="PyTuple"/>, str → <see cref="string"/>, int → <see cref="long"/> (or <see cref="BigInteger"/>
/// beyond 64 bits), float → <see cref="double"/>, bool, None → null, bytes → <c>byte[]</c>,
/// argparse.Namespace → <see cref="PyNamespace"/>, tensors → <see cref="TorchTensor"/> (unnamed; see
/// <see cref="TorchCheckpoint"/>). Stack, memo, string and integer sizes are bounded, so corrupted input ends
/// in a <see cref="TensorFileException"/>, never another exception or a hang.
/// </summary>
public sealed class Unpickler
{
    /// <summary>Most values the stack may hold at once.</summary>
    public const int MaxStack = 1 << 20;

    /// <summary>Most nested MARKs.</summary>
    public const int MaxMarks = 1 << 16;

    /// <summary>Most memo entries.</summary>
    public const int MaxMemo = 1 << 22;

    /// <summary>Most bytes of one LONG1/LONG4 integer (a 8192-bit integer is already absurd in a checkpoint).</summary>
    public const int MaxLongBytes = 1024;

    /// <summary>Deepest tuple-in-tuple nesting accepted.</summary>
    public const int MaxTupleDepth = 512;

    private readonly string _path;
    private readonly Func<object?, object?>? _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];
    private int _opcodeAt;

    private Unpickler(string path, Func<object?, object?>? persistentLoad)
    {
        _path = path;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Unpickles one object; <paramref name="path"/> names the source in error messages. Persistent ids (storages) are refused.</summary>
    public static object? Load(ReadOnlySpan<byte> pickle, string path) => Load(pickle, path, null, out _);

    /// <summary>
    /// Unpickles the object that starts at the beginning of <paramref name="pickle"/>; <paramref name="consumed"/>
    /// is the number of bytes up to and including its STOP (legacy checkpoints hold several pickles back to back).
    /// <paramref name="persistentLoad"/> turns a persistent id into a storage.
    /// </summary>
    internal static object? Load(ReadOnlySpan<byte> pickle, string path, Func<object?, object?>? persistentLoad, out int consumed)
    {
        var u = new Unpickler(path, persistentLoad);
        var r = new PickleReader(pickle, path);
        return u.Run(ref r, out consumed);
    }

    private TensorFileException Fail(string fault) => new(_path, $"pickle: {fault} (opcode at byte {_opcodeAt})");

    private object? Run(ref PickleReader r, out int consumed)
    {
        while (true)
        {
            _opcodeAt = r.Position;
            byte op = r.Byte();
            switch (op)
            {
                case 0x80: // PROTO
                    int proto = r.Byte();
                    if (proto > 5) throw Fail($"unsupported pickle protocol {proto}");
                    break;
                case 0x95: // FRAME: a length hint only
                    ulong frame = r.U64();
                    if (frame > (ulong)r.Remaining) throw Fail($"FRAME of {frame} bytes but only {r.Remaining} remain");
                    break;
                case (byte)'.': // STOP
                    consumed = r.Position;
                    return Pop();
                case (byte)'(': // MARK
                    if (_marks.Count >= MaxMarks) throw Fail($"more than {MaxMarks} nested MARKs");
                    _marks.Add(_stack.Count);
                    break;
                case (byte)'0': // POP
                    if (_marks.Count > 0 && _marks[^1] == _stack.Count) PopToMark();
                    else Pop();
                    break;
                case (byte)'1': // POP_MARK: drops the mark and everything above it
                    PopToMark();
                    break;
                case (byte)'2': // DUP
                    Push(Peek());
                    break;

                case (byte)'N': Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)r.I32()); break; // BININT
                case (byte)'K': Push((long)r.Byte()); break; // BININT1
                case (byte)'M': Push((long)r.U16()); break; // BININT2
                case 0x8a: Push(DecodeLong(r.Bytes(r.Byte(), "LONG1"))); break; // LONG1
                case 0x8b: // LONG4
                    int n4 = r.I32();
                    if (n4 < 0 || n4 > MaxLongBytes) throw Fail($"LONG4 of {n4} bytes is out of range (limit {MaxLongBytes})");
                    Push(DecodeLong(r.Bytes(n4, "LONG4")));
                    break;
                case (byte)'G': Push(r.F64BigEndian()); break; // BINFLOAT
                case (byte)'I': Push(ParseTextInt(r.Line("INT"), allowBool: true)); break; // INT
                case (byte)'L': // LONG (text)
                    var lt = r.Line("LONG");
                    if (lt.Length > 0 && lt[^1] == (byte)'L') lt = lt[..^1];
                    Push(ParseTextInt(lt, allowBool: false));
                    break;
                case (byte)'F': Push(ParseTextFloat(r.Line("FLOAT"))); break; // FLOAT

                case (byte)'X': Push(r.Utf8(r.Bytes(r.U32(), "BINUNICODE"), "BINUNICODE string")); break;
                case 0x8c: Push(r.Utf8(r.Bytes(r.Byte(), "SHORT_BINUNICODE"), "SHORT_BINUNICODE string")); break;
                case 0x8d: Push(r.Utf8(r.Bytes(ClampLength(r.U64()), "BINUNICODE8"), "BINUNICODE8 string")); break;
                case (byte)'T': Push(Encoding.Latin1.GetString(r.Bytes(r.I32(), "BINSTRING"))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(r.Bytes(r.Byte(), "SHORT_BINSTRING"))); break;
                case (byte)'B': Push(r.Bytes(r.U32(), "BINBYTES").ToArray()); break;
                case (byte)'C': Push(r.Bytes(r.Byte(), "SHORT_BINBYTES").ToArray()); break;
                case 0x8e: Push(r.Bytes(ClampLength(r.U64()), "BINBYTES8").ToArray()); break;
                case 0x96: Push(r.Bytes(ClampLength(r.U64()), "BYTEARRAY8").ToArray()); break;

                case (byte)')': Push(PyTuple.Empty); break; // EMPTY_TUPLE
                case (byte)'t': Push(MakeTuple(PopToMark())); break; // TUPLE
                case 0x85: Push(MakeTuple([Pop()])); break; // TUPLE1
                case 0x86: // TUPLE2
                {
                    var b = Pop();
                    var a = Pop();
                    Push(MakeTuple([a, b]));
                    break;
                }
                case 0x87: // TUPLE3
                {
                    var c = Pop();
                    var b = Pop();
                    var a = Pop();
                    Push(MakeTuple([a, b, c]));
                    break;
                }

                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(new List<object?>(PopToMark())); break; // LIST
                case (byte)'a': // APPEND
                {
                    var v = Pop();
                    AsList(Peek(), "APPEND").Add(v);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopToMark();
                    AsList(Peek(), "APPENDS").AddRange(items);
                    break;
                }

                case (byte)'}': Push(new PyDict(isOrderedDict: false)); break; // EMPTY_DICT
                case (byte)'d': // DICT
                {
                    var items = PopToMark();
                    var d = new PyDict(isOrderedDict: false);
                    SetItems(d, items, "DICT");
                    Push(d);
                    break;
                }
                case (byte)'s': // SETITEM
                {
                    var v = Pop();
                    var k = Pop();
                    SetItems(Peek(), [k, v], "SETITEM");
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopToMark();
                    SetItems(Peek(), items, "SETITEMS");
                    break;
                }

                case (byte)'h': MemoGet(r.Byte()); break; // BINGET
                case (byte)'j': MemoGet(r.U32()); break; // LONG_BINGET
                case (byte)'g': MemoGet(ParseMemoIndex(r.Line("GET"))); break; // GET
                case (byte)'q': MemoPut(r.Byte()); break; // BINPUT
                case (byte)'r': MemoPut(r.U32()); break; // LONG_BINPUT
                case (byte)'p': MemoPut(ParseMemoIndex(r.Line("PUT"))); break; // PUT
                case 0x94: MemoPut(_memo.Count); break; // MEMOIZE

                case (byte)'c': // GLOBAL
                {
                    string module = r.Utf8(r.Line("GLOBAL module"), "GLOBAL module");
                    string name = r.Utf8(r.Line("GLOBAL name"), "GLOBAL name");
                    Push(ResolveGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string m || name is not string n)
                        throw Fail("STACK_GLOBAL needs two strings (module, name) on the stack");
                    Push(ResolveGlobal(m, n));
                    break;
                }
                case (byte)'i': // INST: GLOBAL plus a call with the marked arguments
                {
                    string module = r.Utf8(r.Line("INST module"), "INST module");
                    string name = r.Utf8(r.Line("INST name"), "INST name");
                    var cls = ResolveGlobal(module, name);
                    Push(Instantiate(cls, MakeTuple(PopToMark()), "INST"));
                    break;
                }
                case (byte)'o': // OBJ
                {
                    var items = PopToMark();
                    if (items.Length == 0) throw Fail("OBJ without a class");
                    Push(Instantiate(items[0], MakeTuple(items[1..]), "OBJ"));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop();
                    var callable = Pop();
                    Push(Reduce(callable, args));
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var args = Pop();
                    var cls = Pop();
                    Push(Instantiate(cls, args, "NEWOBJ"));
                    break;
                }
                case 0x92: // NEWOBJ_EX
                {
                    var kwargs = Pop();
                    var args = Pop();
                    var cls = Pop();
                    if (kwargs is not PyDict { Count: 0 }) throw Fail("NEWOBJ_EX with keyword arguments is not supported");
                    Push(Instantiate(cls, args, "NEWOBJ_EX"));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    Build(Peek(), state);
                    break;
                }
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'P': Push(PersistentLoad(r.Utf8(r.Line("PERSID"), "PERSID"))); break; // PERSID

                case 0x82 or 0x83 or 0x84:
                    throw Fail("extension-registry opcodes (EXT1/EXT2/EXT4) name arbitrary globals and are not allowed in a checkpoint; refusing to load");
                case 0x8f or 0x90 or 0x91:
                    throw Fail("sets (EMPTY_SET/ADDITEMS/FROZENSET) are not supported in a checkpoint");
                case 0x97 or 0x98:
                    throw Fail("out-of-band buffers (NEXT_BUFFER/READONLY_BUFFER) are not supported");
                case (byte)'S' or (byte)'V':
                    throw Fail("protocol-0 quoted strings (STRING/UNICODE) are not supported");
                default:
                    throw Fail($"unknown opcode 0x{op:x2}");
            }
        }
    }

    private void Push(object? value)
    {
        if (_stack.Count >= MaxStack) throw Fail($"pickle stack grew past {MaxStack} values");
        _stack.Add(value);
    }

    private object? Pop()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Fail("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Fail("stack underflow");
        return _stack[^1];
    }

    private int PopMark()
    {
        if (_marks.Count == 0) throw Fail("MARK expected but none is open");
        int m = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        return m;
    }

    private object?[] PopToMark()
    {
        int m = PopMark();
        var items = _stack.GetRange(m, _stack.Count - m).ToArray();
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private PyTuple MakeTuple(object?[] items)
    {
        var t = new PyTuple(items);
        if (t.Depth > MaxTupleDepth) throw Fail($"tuples nested deeper than {MaxTupleDepth}");
        return t;
    }

    private List<object?> AsList(object? target, string op) =>
        target as List<object?> ?? throw Fail($"{op} on a {TypeName(target)}, not a list");

    private void SetItems(object? target, object?[] items, string op)
    {
        if (target is not PyDict d) throw Fail($"{op} on a {TypeName(target)}, not a dict");
        if (items.Length % 2 != 0) throw Fail($"{op} with an odd number of keys and values");
        for (int i = 0; i < items.Length; i += 2)
        {
            var key = items[i];
            if (key is null || !PyKeyComparer.IsHashable(key))
                throw Fail($"{op} with an unsupported dict key of type {TypeName(key)}");
            d.Set(key, items[i + 1]);
        }
    }

    private void MemoGet(long index)
    {
        if (!_memo.TryGetValue(index, out var v)) throw Fail($"memo entry {index} is read before it is written");
        Push(v);
    }

    private void MemoPut(long index)
    {
        if (index < 0) throw Fail($"negative memo index {index}");
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(index)) throw Fail($"memo grew past {MaxMemo} entries");
        _memo[index] = Peek();
    }

    private long ParseMemoIndex(ReadOnlySpan<byte> text)
    {
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
            throw Fail("GET/PUT index is not a decimal number");
        return v;
    }

    private object ParseTextInt(ReadOnlySpan<byte> text, bool allowBool)
    {
        if (allowBool && text.SequenceEqual("00"u8)) return false;
        if (allowBool && text.SequenceEqual("01"u8)) return true;
        if (text.Length > 4 * MaxLongBytes) throw Fail("text integer is absurdly long");
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v)) return v;
        if (BigInteger.TryParse(Encoding.ASCII.GetString(text), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big)) return big;
        throw Fail("INT/LONG argument is not a decimal integer");
    }

    private double ParseTextFloat(ReadOnlySpan<byte> text)
    {
        switch (Encoding.ASCII.GetString(text).Trim())
        {
            case "nan": return double.NaN;
            case "inf": return double.PositiveInfinity;
            case "-inf": return double.NegativeInfinity;
        }
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
        throw Fail("FLOAT argument is not a number");
    }

    private int ClampLength(ulong n) => n > int.MaxValue ? throw Fail($"length {n} exceeds the data") : (int)n;

    private static object DecodeLong(ReadOnlySpan<byte> le)
    {
        if (le.Length == 0) return 0L;
        if (le.Length <= 8)
        {
            long v = 0;
            for (int i = le.Length - 1; i >= 0; i--) v = (v << 8) | le[i];
            int shift = 64 - 8 * le.Length;
            return shift == 0 ? v : (v << shift) >> shift; // sign-extend
        }
        var big = new BigInteger(le, isUnsigned: false, isBigEndian: false);
        return big >= long.MinValue && big <= long.MaxValue ? (long)big : big;
    }

    private PickleGlobal ResolveGlobal(string module, string name) =>
        PickleGlobal.Find(module, name)
        ?? throw Fail($"pickle global '{module}.{name}' is not allowed in a checkpoint (only state-dict globals are accepted); refusing to load");

    private object? PersistentLoad(object? pid)
    {
        if (_persistentLoad is null)
            throw Fail("persistent id (a tensor storage) found, but this pickle is not being read as part of a checkpoint");
        return _persistentLoad(pid);
    }

    private object Instantiate(object? cls, object? args, string op)
    {
        if (cls is not PickleGlobal g) throw Fail($"{op} on a {TypeName(cls)}, not an allowed class");
        if (args is not PyTuple a) throw Fail($"{op} arguments are a {TypeName(args)}, not a tuple");
        return g.Kind switch
        {
            GlobalKind.Namespace when a.Count == 0 => new PyNamespace(),
            GlobalKind.OrderedDict => MakeOrderedDict(a, op),
            _ => throw Fail($"{op} of {g} with {a.Count} arguments is not supported"),
        };
    }

    private PyDict MakeOrderedDict(PyTuple args, string op)
    {
        var d = new PyDict(isOrderedDict: true);
        if (args.Count == 0) return d;
        if (args.Count == 1 && args[0] is IReadOnlyList<object?> pairs)
        {
            foreach (var p in pairs)
            {
                if (p is not IReadOnlyList<object?> { Count: 2 } kv) throw Fail($"{op}: OrderedDict items must be (key, value) pairs");
                SetItems(d, [kv[0], kv[1]], op);
            }
            return d;
        }
        throw Fail($"{op}: OrderedDict with {args.Count} arguments is not supported");
    }

    private object? Reduce(object? callable, object? args)
    {
        if (callable is not PickleGlobal g) throw Fail($"REDUCE on a {TypeName(callable)}, not an allowed callable");
        if (args is not PyTuple a) throw Fail($"REDUCE arguments are a {TypeName(args)}, not a tuple");
        switch (g.Kind)
        {
            case GlobalKind.OrderedDict:
            case GlobalKind.Namespace:
                return Instantiate(g, a, "REDUCE");
            case GlobalKind.RebuildTensorV2:
            {
                if (a.Count is not (6 or 7)) throw Fail($"_rebuild_tensor_v2 takes 6 or 7 arguments, got {a.Count}");
                if (a[0] is not TorchStorage storage) throw Fail($"_rebuild_tensor_v2: first argument is a {TypeName(a[0])}, not a storage");
                long offset = AsInt(a[1], "_rebuild_tensor_v2 storage_offset");
                long[] size = AsInts(a[2], "_rebuild_tensor_v2 size");
                long[] stride = AsInts(a[3], "_rebuild_tensor_v2 stride");
                bool requiresGrad = AsBool(a[4], "_rebuild_tensor_v2 requires_grad");
                return TorchTensor.Create(storage, offset, size, stride, requiresGrad, _path);
            }
            case GlobalKind.RebuildParameter:
            {
                if (a.Count != 3) throw Fail($"_rebuild_parameter takes 3 arguments, got {a.Count}");
                if (a[0] is not TorchTensor t) throw Fail($"_rebuild_parameter: first argument is a {TypeName(a[0])}, not a tensor");
                return t.AsParameter(AsBool(a[1], "_rebuild_parameter requires_grad"));
            }
            default:
                throw Fail($"{g} cannot be called");
        }
    }

    private void Build(object? target, object? state)
    {
        switch (target)
        {
            case PyDict { IsOrderedDict: true }:
                // OrderedDict attributes such as _metadata (per-module versions): accepted, not needed.
                if (state is not (null or PyDict or PyTuple)) throw Fail($"BUILD on an OrderedDict with a {TypeName(state)} state");
                return;
            case PyNamespace ns:
                if (state is not PyDict fields) throw Fail($"BUILD on argparse.Namespace needs a dict state, got a {TypeName(state)}");
                foreach (var (k, v) in fields)
                {
                    if (k is not string name) throw Fail($"argparse.Namespace attribute name is a {TypeName(k)}, not a string");
                    ns.Set(name, v);
                }
                return;
            default:
                throw Fail($"BUILD on a {TypeName(target)} is not supported");
        }
    }

    private long AsInt(object? v, string what) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw Fail($"{what} is a {TypeName(v)}, not an int"),
    };

    private long[] AsInts(object? v, string what)
    {
        if (v is not IReadOnlyList<object?> list) throw Fail($"{what} is a {TypeName(v)}, not a tuple of ints");
        var result = new long[list.Count];
        for (int i = 0; i < result.Length; i++) result[i] = AsInt(list[i], what);
        return result;
    }

    private bool AsBool(object? v, string what) => v switch
    {
        bool b => b,
        long l => l != 0,
        _ => throw Fail($"{what} is a {TypeName(v)}, not a bool"),
    };

    internal static string TypeName(object? v) => v switch
    {
        null => "None",
        string => "str",
        long or BigInteger => "int",
        double => "float",
        bool => "bool",
        byte[] => "bytes",
        PyTuple => "tuple",
        List<object?> => "list",
        PyDict { IsOrderedDict: true } => "OrderedDict",
        PyDict => "dict",
        PyNamespace => "argparse.Namespace",
        TorchTensor => "tensor",
        TorchStorage => "storage",
        PickleGlobal g => $"global {g}",
        _ => v.GetType().Name,
    };
}
