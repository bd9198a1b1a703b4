using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using DyDiT.Eval.Engine.Formats.Zip;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// Writes a float32 state dict the way <c>torch.save(state_dict, f)</c> does by default (the zip container,
/// pickle protocol 2), so that <c>torch.load</c>, the official scripts' <c>load_state_dict</c> and our
/// <see cref="TorchCheckpoint"/> all read it:
/// <code>
///   archive/data.pkl      collections.OrderedDict of key → torch._utils._rebuild_tensor_v2(
///                             persistent_load(('storage', torch.FloatStorage, '&lt;n&gt;', 'cpu', numel)),
///                             0, size, stride, False, collections.OrderedDict())
///   archive/byteorder     "little"   (what torch ≥ 2.1 adds; older readers ignore it)
///   archive/data/&lt;n&gt;     raw little-endian float32 values of storage n, members in sorted key order as torch
///   archive/version       "3\n"
/// </code>
/// Every member is stored (uncompressed) and its data starts at a multiple of <see cref="DataAlignment"/> bytes,
/// as PyTorch's writer lays them out so storages can be memory-mapped. Storage keys are "0", "1", … in the order
/// tensors were added (torch numbers storages as the pickler meets them); each tensor has its own contiguous
/// storage. Same tensors in the same order give byte-identical files (fixed zip timestamps, no ids or paths).
/// Tensors are held by reference until <see cref="Save"/>; do not change their arrays in between.
/// </summary>
public sealed class TorchCheckpointWriter
{
    /// <summary>Byte alignment of every member's data (PyTorch's <c>kFieldAlignment</c>).</summary>
    public const int DataAlignment = 64;

    /// <summary>The folder inside the zip: torch.save names it "archive" when saving through a buffer.</summary>
    public const string ArchiveName = "archive";

    private readonly List<(string Name, long[] Shape, float[] Values)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Tensors added so far.</summary>
    public int Count => _tensors.Count;

    /// <summary>
    /// Adds state-dict entry <paramref name="name"/>: <paramref name="values"/> in C order with shape
    /// <paramref name="shape"/> (an empty shape is a 0-d tensor holding one value).
    /// </summary>
    public void Add(string name, float[] values, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(shape);
        if (name.Length == 0) throw new ArgumentException("a state-dict key must not be empty", nameof(name));
        if (shape.Any(d => d < 0)) throw new ArgumentException($"'{name}': shape [{string.Join(", ", shape)}] has a negative size", nameof(shape));
        long numel = shape.Aggregate(1L, (a, d) => checked(a * d));
        if (numel != values.Length)
            throw new ArgumentException($"'{name}': shape [{string.Join(", ", shape)}] holds {numel} values, {values.Length} given", nameof(values));
        if (!_names.Add(name)) throw new ArgumentException($"duplicate state-dict key '{name}'", nameof(name));
        _tensors.Add((name, (long[])shape.Clone(), values));
    }

    /// <summary>
    /// Writes the checkpoint to <paramref name="path"/>: built under a temporary name in the same folder, flushed,
    /// then renamed over any existing file, so a reader never sees a half-written checkpoint.
    /// </summary>
    public void Save(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("writing torch checkpoints needs a little-endian machine");
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                WriteTo(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Writes the zip to a seekable stream positioned at its start.</summary>
    internal void WriteTo(Stream output)
    {
        var zip = new ZipWriter(output);
        void Record(string name, ReadOnlySpan<byte> data)
        {
            zip.BeginEntry($"{ArchiveName}/{name}", DataAlignment);
            zip.Write(data);
            zip.EndEntry();
        }

        Record("data.pkl", Pickle());
        Record("byteorder", "little"u8);
        // torch writes the storages in sorted key order ("0", "1", "10", "11", …, "2", …)
        foreach (int i in Enumerable.Range(0, _tensors.Count).OrderBy(StorageKey, StringComparer.Ordinal))
            Record("data/" + StorageKey(i), MemoryMarshal.AsBytes(_tensors[i].Values.AsSpan()));
        Record("version", "3\n"u8);
        zip.Finish();
    }

    private static string StorageKey(int index) => index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The data.pkl bytes: what Python's protocol-2 pickler emits for the state dict, memoizing the repeated globals and strings.</summary>
    internal byte[] Pickle()
    {
        var p = new PickleEmitter();
        p.Op(Proto);
        p.Op(2);
        p.Global("collections", "OrderedDict");
        p.Op(EmptyTuple);
        p.Op(Reduce);
        // Python batches dict items in groups of 1000: MARK … SETITEMS, or key value SETITEM for a single item.
        for (int start = 0; start < _tensors.Count; start += 1000)
        {
            int count = Math.Min(1000, _tensors.Count - start);
            if (count > 1) p.Op(Mark);
            for (int i = start; i < start + count; i++)
            {
                var (name, shape, values) = _tensors[i];
                p.String(name, memoize: false);
                p.Global("torch._utils", "_rebuild_tensor_v2");
                p.Op(Mark);
                p.Op(Mark);
                p.String("storage", memoize: true);
                p.Global("torch", "FloatStorage");
                p.String(StorageKey(i), memoize: false);
                p.String("cpu", memoize: true);
                p.Int(values.LongLength);
                p.Op(TupleOp);
                p.Op(BinPersId);
                p.Int(0); // storage offset
                p.Tuple(shape);
                p.Tuple(ContiguousStrides(shape));
                p.Op(NewFalse); // requires_grad
                p.Global("collections", "OrderedDict"); // backward hooks: an empty OrderedDict
                p.Op(EmptyTuple);
                p.Op(Reduce);
                p.Op(TupleOp);
                p.Op(Reduce);
            }
            p.Op(count > 1 ? SetItems : SetItem);
        }
        p.Op(Stop);
        return p.ToArray();
    }

    private static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long step = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = step;
            step *= Math.Max(shape[d], 1);
        }
        return strides;
    }

    // pickle opcodes (protocol 2)
    private const byte Mark = (byte)'(', Stop = (byte)'.', TupleOp = (byte)'t', Reduce = (byte)'R', BinPersId = (byte)'Q',
        SetItem = (byte)'s', SetItems = (byte)'u', EmptyTuple = (byte)')', Proto = 0x80, NewFalse = 0x89;

    /// <summary>Appends pickle opcodes; memoizes globals (and chosen strings) so repeats are BINGETs, as Python's pickler does.</summary>
    private sealed class PickleEmitter
    {
        private readonly MemoryStream _out = new();
        private readonly Dictionary<string, int> _memo = new(StringComparer.Ordinal);

        public void Op(byte code) => _out.WriteByte(code);

        public byte[] ToArray() => _out.ToArray();

        public void Global(string module, string name)
        {
            string key = "global:" + module + "\n" + name;
            if (Get(key)) return;
            Op((byte)'c');
            _out.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
            Put(key);
        }

        public void String(string value, bool memoize)
        {
            string key = "str:" + value;
            if (memoize && Get(key)) return;
            var bytes = Encoding.UTF8.GetBytes(value);
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)bytes.Length);
            Op((byte)'X'); // BINUNICODE
            _out.Write(len);
            _out.Write(bytes);
            if (memoize) Put(key);
        }

        public void Int(long value)
        {
            Span<byte> b = stackalloc byte[9];
            if (value is >= 0 and < 256)
            {
                Op((byte)'K'); // BININT1
                Op((byte)value);
            }
            else if (value is >= 0 and < 65536)
            {
                Op((byte)'M'); // BININT2
                BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)value);
                _out.Write(b[..2]);
            }
            else if (value is >= int.MinValue and <= int.MaxValue)
            {
                Op((byte)'J'); // BININT
                BinaryPrimitives.WriteInt32LittleEndian(b, (int)value);
                _out.Write(b[..4]);
            }
            else
            {
                Op(0x8a); // LONG1: 8 bytes of little-endian two's complement are always enough for a long
                Op(8);
                BinaryPrimitives.WriteInt64LittleEndian(b, value);
                _out.Write(b[..8]);
            }
        }

        public void Tuple(long[] items)
        {
            switch (items.Length)
            {
                case 0:
                    Op(EmptyTuple);
                    return;
                case <= 3:
                    foreach (var v in items) Int(v);
                    Op((byte)(0x85 + items.Length - 1)); // TUPLE1..TUPLE3
                    return;
                default:
                    Op(Mark);
                    foreach (var v in items) Int(v);
                    Op(TupleOp);
                    return;
            }
        }

        private bool Get(string key)
        {
            if (!_memo.TryGetValue(key, out int index)) return false;
            if (index < 256)
            {
                Op((byte)'h'); // BINGET
                Op((byte)index);
            }
            else
            {
                Op((byte)'j'); // LONG_BINGET
                Span<byte> b = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)index);
                _out.Write(b);
            }
            return true;
        }

        private void Put(string key)
        {
            int index = _memo.Count;
            _memo.Add(key, index);
            if (index < 256)
            {
                Op((byte)'q'); // BINPUT
                Op((byte)index);
            }
            else
            {
                Op((byte)'r'); // LONG_BINPUT
                Span<byte> b = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)index);
                _out.Write(b);
            }
        }
    }
}
