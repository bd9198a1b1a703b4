using System.Globalization;
using System.Numerics;
using System.Text;
using DyDiT.Eval.Engine.Formats.Zip;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// A <c>torch.save</c> file opened without PyTorch: the zip container (<c>&lt;prefix&gt;/data.pkl</c> plus one
/// <c>&lt;prefix&gt;/data/&lt;key&gt;</c> member per storage) or the legacy stream (five pickles, then raw storage
/// records). The object pickle is read with the allow-list <see cref="Unpickler"/>; storages stay in the
/// read-only memory-mapped file and tensors read them on demand, so a multi-GB checkpoint is never copied.
/// Dispose the checkpoint once its tensors have been read.
/// </summary>
public sealed class TorchCheckpoint : IDisposable
{
    private const int MaxNesting = 512;
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("1950a86a20f9469cfc6c", NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private readonly MappedFile _file;

    private TorchCheckpoint(MappedFile file, string format, object? root, IReadOnlyList<TorchTensor> tensors)
    {
        _file = file;
        Format = format;
        Root = root;
        Tensors = tensors;
    }

    public string Path => _file.Path;

    /// <summary><c>torch-zip</c> or <c>torch-legacy</c>.</summary>
    public string Format { get; }

    /// <summary>The unpickled object (usually a <see cref="PyDict"/>), with every tensor in it named.</summary>
    public object? Root { get; }

    /// <summary>
    /// Every tensor reachable from <see cref="Root"/>, in dict/list order. <see cref="StoredTensor.Name"/> is the
    /// '/'-joined key path (<c>ema/blocks.0.attn.qkv.weight</c>, <c>proj.weight</c> for a bare state dict, list
    /// and tuple items by index, integer keys in decimal).
    /// </summary>
    public IReadOnlyList<TorchTensor> Tensors { get; }

    /// <summary>Opens and indexes <paramref name="path"/>; faults in the file raise <see cref="TensorFileException"/>.</summary>
    public static TorchCheckpoint Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            Span<byte> head = stackalloc byte[4];
            int n = (int)Math.Min(4, file.Length);
            file.Read(0, head[..n]);
            head = head[..n];
            object? root;
            string format;
            if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8))
            {
                format = "torch-zip";
                root = ReadZip(file);
            }
            else if (head.Length >= 2 && head[0] == 0x80)
            {
                format = "torch-legacy";
                root = ReadLegacy(file);
            }
            else if (IsTar(file))
            {
                throw new TensorFileException(path, "tar-format checkpoint (torch < 0.4) is not supported; re-save it with a current torch.save");
            }
            else
            {
                throw new TensorFileException(path, n == 0 ? "file is empty" : $"not a torch checkpoint: starts with {Convert.ToHexString(head)}, expected a zip archive (504B0304) or a pickle (80..)");
            }

            var tensors = new List<TorchTensor>();
            root = NameTensors(root, "", tensors, new HashSet<object>(ReferenceEqualityComparer.Instance), 0, path);
            CheckTotalLogicalSize(tensors, path);
            return new TorchCheckpoint(file, format, root, tensors);
        }
        catch (Exception ex) when (ex is OverflowException or InvalidCastException or IndexOutOfRangeException or ArgumentException or InvalidOperationException)
        {
            file.Dispose();
            throw new TensorFileException(path, $"malformed checkpoint ({ex.GetType().Name}: {ex.Message})", ex);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> and returns its weights (<see cref="StateDict"/>). The returned tensors keep
    /// the file mapped until they are garbage-collected; use <see cref="Open"/> and <see cref="StateDict"/> to
    /// release it deterministically.
    /// </summary>
    public static IReadOnlyDictionary<string, TorchTensor> LoadWeights(string path)
    {
        var ckpt = Open(path);
        try
        {
            return ckpt.StateDict();
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The model weights: the root's <c>ema</c> entry if it is a dict of tensors, else <c>model</c>, else
    /// <c>state_dict</c>, else the root itself when it is a dict of tensors. Keys are the state-dict keys
    /// (<c>blocks.0.attn.qkv.weight</c>), in file order.
    /// </summary>
    public IReadOnlyDictionary<string, TorchTensor> StateDict()
    {
        if (Root is PyDict d)
        {
            foreach (var key in new[] { "ema", "model", "state_dict" })
            {
                if (d.TryGetValue(key, out var v) && v is PyDict sd && AsTensorDict(sd) is { } picked) return picked;
            }
            if (AsTensorDict(d) is { } whole) return whole;
            string keys = string.Join(", ", d.Keys.Take(12).Select(k => $"'{k}'"));
            throw new TensorFileException(Path, $"no state dict found: the top-level dict ({keys}) has no 'ema', 'model' or 'state_dict' dict of tensors and is not one itself");
        }
        throw new TensorFileException(Path, $"no state dict found: the checkpoint holds a {Unpickler.TypeName(Root)}, not a dict");
    }

    public void Dispose() => _file.Dispose();

    private static OrderedDictionary<string, TorchTensor>? AsTensorDict(PyDict d)
    {
        if (d.Count == 0) return null;
        var result = new OrderedDictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (k, v) in d)
        {
            if (k is not string name || v is not TorchTensor t) return null;
            result.Add(name, t);
        }
        return result;
    }

    private static bool IsTar(MappedFile file) =>
        file.Length >= 512 && file.ReadArray(257, 5).AsSpan().SequenceEqual("ustar"u8);

    private static object? ReadZip(MappedFile file)
    {
        string path = file.Path;
        var zip = ZipIndex.Read(file);
        var pickles = zip.Names.Where(n => n == "data.pkl" || n.EndsWith("/data.pkl", StringComparison.Ordinal)).ToList();
        if (pickles.Count == 0)
            throw new TensorFileException(path, $"zip archive has no '<prefix>/data.pkl' member (members: {string.Join(", ", zip.Names.Take(8))}); not a torch checkpoint");
        if (pickles.Count > 1)
            throw new TensorFileException(path, $"zip archive has {pickles.Count} data.pkl members ({string.Join(", ", pickles.Take(4))}); expected one");
        string prefix = pickles[0][..^"data.pkl".Length];

        if (zip.TryGet(prefix + "byteorder", out var bo))
        {
            var order = Encoding.ASCII.GetString(file.ReadArray(bo.DataOffset, Math.Min(bo.Size, 16)));
            if (order != "little") throw new TensorFileException(path, $"checkpoint byte order is '{order}'; only little-endian storages are supported");
        }

        var pkl = RequireStored(zip, pickles[0], path);
        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        object? Load(object? pid)
        {
            var (key, dtype, numel, view) = ParsePersistentId(pid, path, allowView: false);
            if (!storages.TryGetValue(key, out var storage))
            {
                string member = prefix + "data/" + key;
                if (!zip.TryGet(member, out _))
                    throw new TensorFileException(path, $"storage '{key}' has no record: zip member '{member}' is missing");
                var m = RequireStored(zip, member, path);
                long need = numel > long.MaxValue / dtype.ItemSize() ? long.MaxValue : numel * dtype.ItemSize();
                if (m.Size < need)
                    throw new TensorFileException(path, $"storage '{key}' holds {numel} {dtype.NumpyName()} elements ({need} bytes) but zip member '{member}' has only {m.Size} bytes");
                storage = new TorchStorage(file, key, dtype, numel);
                storage.Bind(m.DataOffset);
                storages.Add(key, storage);
            }
            return CheckSame(storage, dtype, numel, view, path);
        }

        if (pkl.Size > int.MaxValue) throw new TensorFileException(path, $"data.pkl of {pkl.Size} bytes is too large");
        using var pin = file.Pin();
        return Unpickler.Load(pin.Span(pkl.DataOffset, (int)pkl.Size), path, Load, out _);
    }

    private static ZipIndex.Member RequireStored(ZipIndex zip, string name, string path)
    {
        zip.TryGet(name, out var m);
        if (m.Encrypted) throw new TensorFileException(path, $"zip member '{name}' is encrypted");
        if (m.Method != 0)
            throw new TensorFileException(path, $"zip member '{name}' is compressed (method {m.Method}); torch checkpoints store members uncompressed — re-save with torch.save");
        return m;
    }

    private static object? ReadLegacy(MappedFile file)
    {
        string path = file.Path;
        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        object? Load(object? pid)
        {
            var (key, dtype, numel, view) = ParsePersistentId(pid, path, allowView: true);
            if (!storages.TryGetValue(key, out var storage))
            {
                storage = new TorchStorage(file, key, dtype, numel);
                storages.Add(key, storage);
            }
            return CheckSame(storage, dtype, numel, view, path);
        }

        long pos = 0;
        object? root;
        List<object?> keys;
        using (var pin = file.Pin())
        {
            object? Next(Func<object?, object?>? persistentLoad, string what)
            {
                var span = pin.Span(pos, (int)Math.Min(file.Length - pos, int.MaxValue));
                try
                {
                    var value = Unpickler.Load(span, path, persistentLoad, out int used);
                    pos += used;
                    return value;
                }
                catch (TensorFileException ex)
                {
                    throw new TensorFileException(path, $"legacy {what} (pickle at byte {pos}): {ex.Fault}", ex);
                }
            }

            var magic = Next(null, "magic number");
            if (!(magic is BigInteger m && m == LegacyMagic))
                throw new TensorFileException(path, "not a torch checkpoint: the first pickle is not the legacy magic number 0x1950a86a20f9469cfc6c");
            var protocol = Next(null, "protocol version");
            if (protocol is not 1001L)
                throw new TensorFileException(path, $"unsupported legacy protocol version {protocol ?? "None"} (expected 1001)");
            var sysInfo = Next(null, "sys-info dict");
            if (sysInfo is PyDict info && info.TryGetValue("little_endian", out var le) && le is false)
                throw new TensorFileException(path, "checkpoint was written on a big-endian machine; only little-endian storages are supported");
            root = Next(Load, "object");
            keys = Next(null, "storage key list") as List<object?>
                ?? throw new TensorFileException(path, "legacy storage key list (fifth pickle) is not a list");
        }

        Span<byte> count = stackalloc byte[8];
        foreach (var k in keys)
        {
            if (k is not string key) throw new TensorFileException(path, $"legacy storage key list holds a {Unpickler.TypeName(k)}, not a string");
            if (!storages.TryGetValue(key, out var storage))
                throw new TensorFileException(path, $"legacy storage record '{key}' is not referenced by the pickle, so its element type is unknown");
            if (!file.Contains(pos, 8))
                throw new TensorFileException(path, $"file ends before the record of storage '{key}' (truncated at byte {file.Length})");
            file.Read(pos, count);
            long numel = BitConverter.ToInt64(count);
            if (numel != storage.ElementCount)
                throw new TensorFileException(path, $"storage '{key}' record holds {numel} elements but the pickle says {storage.ElementCount}");
            long bytes = numel * storage.DType.ItemSize();
            if (!file.Contains(pos + 8, bytes))
                throw new TensorFileException(path, $"storage '{key}' ({bytes} bytes at offset {pos + 8}) runs past the end of the {file.Length}-byte file (truncated?)");
            storage.Bind(pos + 8);
            pos += 8 + bytes;
        }
        foreach (var s in storages.Values)
        {
            if (!s.IsBound)
                throw new TensorFileException(path, $"storage '{s.Key}' is referenced by a tensor but the file has no data record for it");
        }
        return root;
    }

    private static (string Key, DType DType, long Numel, (long Offset, long Count)? View) ParsePersistentId(object? pid, string path, bool allowView)
    {
        if (pid is not PyTuple t || t.Count is not (5 or 6) || t[0] is not "storage")
            throw new TensorFileException(path, $"persistent id {pid} is not a ('storage', type, key, location, numel) tuple");
        if (t[1] is not PickleGlobal { Kind: GlobalKind.Storage } type)
            throw new TensorFileException(path, $"persistent id names {Unpickler.TypeName(t[1])} where a torch.*Storage class belongs");
        if (t[2] is not string key || key.Length == 0 || key.Contains('/') || key.Contains(".."))
            throw new TensorFileException(path, $"persistent id has an invalid storage key {t[2] ?? "None"}");
        if (t[3] is not string)
            throw new TensorFileException(path, $"storage '{key}': location is a {Unpickler.TypeName(t[3])}, not a string");
        if (t[4] is not long numel || numel < 0)
            throw new TensorFileException(path, $"storage '{key}': element count {t[4] ?? "None"} is not a non-negative int");
        (long, long)? view = null;
        if (t.Count == 6 && t[5] is not null)
        {
            if (!allowView || t[5] is not PyTuple { Count: 3 } v || v[1] is not long off || v[2] is not long cnt
                || off < 0 || cnt < 0 || off > numel || cnt > numel - off)
                throw new TensorFileException(path, $"storage '{key}': invalid view metadata {t[5]}");
            view = (off, cnt);
        }
        return (key, type.StorageType, numel, view);
    }

    private static TorchStorage CheckSame(TorchStorage storage, DType dtype, long numel, (long Offset, long Count)? view, string path)
    {
        if (storage.DType != dtype || storage.ElementCount != numel)
            throw new TensorFileException(path, $"storage '{storage.Key}' is described twice differently ({storage.DType} x {storage.ElementCount} vs {dtype} x {numel})");
        return view is { } v ? storage.View(v.Offset, v.Count) : storage;
    }

    /// <summary>Most elements all tensors together may have beyond <see cref="RepeatFactor"/> times what the storages hold.</summary>
    internal const long MaxRepeatedTotalElements = 1L << 26;

    /// <summary>
    /// How many times over the storages' elements the tensors may add up to: tied weights and a few views of one storage
    /// stay far below it, a pickle that references one tensor thousands of times (two bytes per reference) does not.
    /// </summary>
    internal const long RepeatFactor = 8;

    // Each tensor is bounded by its storage (TorchTensor.CheckLogicalSize); this bounds their number, so the work
    // of reading every tensor stays proportional to the file.
    private static void CheckTotalLogicalSize(List<TorchTensor> tensors, string path)
    {
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in tensors)
            stored[t.StorageKey] = Math.Max(stored.GetValueOrDefault(t.StorageKey), t.StorageElementCount);
        long storedTotal = 0;
        foreach (var n in stored.Values) storedTotal = storedTotal > long.MaxValue - n ? long.MaxValue : storedTotal + n;
        long budget = Math.Max(MaxRepeatedTotalElements, storedTotal > long.MaxValue / RepeatFactor ? long.MaxValue : storedTotal * RepeatFactor);
        long total = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            total = total > long.MaxValue - tensors[i].ElementCount ? long.MaxValue : total + tensors[i].ElementCount;
            if (total <= budget) continue;
            string name = tensors[i].Name.Length == 0 ? "(root)" : tensors[i].Name;
            throw new TensorFileException(path,
                $"the checkpoint's tensors add up to more than {budget} elements by tensor '{name}' (number {i + 1} of {tensors.Count}), " +
                $"while its storages hold {storedTotal}: the same data is referenced again and again, so it is refused rather than read");
        }
    }

    private static object? NameTensors(object? value, string prefix, List<TorchTensor> found, HashSet<object> visited, int depth, string path)
    {
        if (value is TorchTensor t)
        {
            var named = t.WithName(prefix);
            named.CheckLogicalSize(path);
            found.Add(named);
            return named;
        }
        if (value is not (PyDict or List<object?> or PyTuple or PyNamespace)) return value;
        if (!visited.Add(value)) return value;
        if (depth >= MaxNesting) throw new TensorFileException(path, $"containers nested deeper than {MaxNesting} levels at '{prefix}'");

        string Child(object key) => prefix.Length == 0 ? KeyText(key) : prefix + "/" + KeyText(key);
        switch (value)
        {
            case PyDict d:
                for (int i = 0; i < d.Count; i++)
                {
                    var (k, v) = d.GetAt(i);
                    var nv = NameTensors(v, Child(k), found, visited, depth + 1, path);
                    if (!ReferenceEquals(nv, v)) d.SetAt(i, nv);
                }
                break;
            case List<object?> l:
                for (int i = 0; i < l.Count; i++) l[i] = NameTensors(l[i], Child(i), found, visited, depth + 1, path);
                break;
            case PyTuple tu:
                for (int i = 0; i < tu.Count; i++)
                {
                    var nv = NameTensors(tu[i], Child(i), found, visited, depth + 1, path);
                    if (!ReferenceEquals(nv, tu[i])) tu.Set(i, nv);
                }
                break;
            case PyNamespace ns:
                for (int i = 0; i < ns.Count; i++)
                {
                    var (k, v) = ns.GetAt(i);
                    var nv = NameTensors(v, Child(k), found, visited, depth + 1, path);
                    if (!ReferenceEquals(nv, v)) ns.SetAt(i, nv);
                }
                break;
        }
        return value;
    }

    private static string KeyText(object key) => key switch
    {
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => key.ToString() ?? "",
    };
}
