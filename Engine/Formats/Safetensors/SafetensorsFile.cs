using System.Buffers.Binary;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats.Torch;

namespace DyDiT.Eval.Engine.Formats.Safetensors;

/// <summary>
/// A <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header mapping each tensor name to
/// <c>{dtype, shape, data_offsets: [begin, end]}</c> (offsets relative to the data section that follows) plus an
/// optional <c>__metadata__</c> string map, then the raw little-endian bytes. The header is validated in full
/// (known dtype, sizes, bounds, no overlaps); the data stays in a read-only memory mapping.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the format's own readers use the same bound).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile _file;
    private readonly Dictionary<string, SafetensorsTensor> _byName;

    private SafetensorsFile(MappedFile file, IReadOnlyDictionary<string, string> metadata, List<SafetensorsTensor> tensors)
    {
        _file = file;
        Metadata = metadata;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public string Path => _file.Path;

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensors in header order; <see cref="StoredTensor.Name"/> is the header key.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    public SafetensorsTensor this[string name] =>
        _byName.TryGetValue(name, out var t) ? t : throw new TensorFileException(Path, $"no tensor '{name}'");

    public bool TryGetTensor(string name, out SafetensorsTensor? tensor) => _byName.TryGetValue(name, out tensor);

    public void Dispose() => _file.Dispose();

    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static SafetensorsFile Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 8) throw new TensorFileException(path, $"file is {file.Length} bytes, too short for the 8-byte safetensors header length");
        Span<byte> lenBytes = stackalloc byte[8];
        file.Read(0, lenBytes);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > MaxHeaderBytes)
            throw new TensorFileException(path, $"safetensors header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit (not a safetensors file?)");
        if ((long)headerLen > file.Length - 8)
            throw new TensorFileException(path, $"safetensors header length {headerLen} runs past the end of the {file.Length}-byte file");
        long dataStart = 8 + (long)headerLen;
        long dataLen = file.Length - dataStart;
        byte[] header = file.ReadArray(8, (long)headerLen);

        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new TensorFileException(path, "safetensors header is not valid JSON: it is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            throw new TensorFileException(path, $"safetensors header is not valid JSON: {ex.Message}");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new TensorFileException(path, $"safetensors header is a JSON {doc.RootElement.ValueKind}, not an object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafetensorsTensor>();
            var ranges = new List<(long Begin, long End, string Name)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new TensorFileException(path, $"safetensors header names '{prop.Name}' twice");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new TensorFileException(path, "__metadata__ is not a JSON object");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new TensorFileException(path, $"__metadata__ entry '{m.Name}' is a {m.Value.ValueKind}, not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                var (tensor, begin, end) = ParseEntry(file, prop, dataStart, dataLen);
                tensors.Add(tensor);
                ranges.Add((begin, end, prop.Name));
            }

            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < ranges.Count; i++)
            {
                if (ranges[i].Begin < ranges[i - 1].End)
                    throw new TensorFileException(path, $"tensor '{ranges[i].Name}' (bytes {ranges[i].Begin}..{ranges[i].End}) overlaps tensor '{ranges[i - 1].Name}' (bytes {ranges[i - 1].Begin}..{ranges[i - 1].End})");
            }
            return new SafetensorsFile(file, metadata, tensors);
        }
    }

    private static (SafetensorsTensor Tensor, long Begin, long End) ParseEntry(MappedFile file, JsonProperty prop, long dataStart, long dataLen)
    {
        string path = file.Path;
        string name = prop.Name;
        TensorFileException Bad(string fault) => new(path, $"tensor '{name}': {fault}");
        var e = prop.Value;
        if (e.ValueKind != JsonValueKind.Object) throw Bad($"header entry is a JSON {e.ValueKind}, not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad("missing string 'dtype'");
        string dtypeName = dt.GetString()!;
        DType dtype = dtypeName switch
        {
            "F32" => DType.Float32,
            "F16" => DType.Float16,
            "BF16" => DType.BFloat16,
            "F64" => DType.Float64,
            "I64" => DType.Int64,
            "I32" => DType.Int32,
            "I16" => DType.Int16,
            "I8" => DType.Int8,
            "U8" => DType.UInt8,
            "BOOL" => DType.Bool,
            _ => throw Bad($"unsupported dtype '{dtypeName}' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)"),
        };
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad("missing 'shape' array");
        var shape = new long[sh.GetArrayLength()];
        long numel = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0) throw Bad($"shape entry {d.GetRawText()} is not a non-negative integer");
            shape[i++] = v;
            if (v != 0 && numel > long.MaxValue / 8 / v) throw Bad($"shape [{string.Join(", ", shape.Take(i))}...] has too many elements");
            numel *= v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad("missing 'data_offsets' [begin, end]");
        long[] be = new long[2];
        i = 0;
        foreach (var o in off.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long v) || v < 0) throw Bad($"data offset {o.GetRawText()} is not a non-negative integer");
            be[i++] = v;
        }
        long begin = be[0], end = be[1];
        if (begin > end) throw Bad($"data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLen) throw Bad($"data_offsets [{begin}, {end}] run past the {dataLen}-byte data section");
        long expected = numel * dtype.ItemSize();
        if (end - begin != expected)
            throw Bad($"data_offsets [{begin}, {end}] span {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expected}");
        return (new SafetensorsTensor(file, name, shape, dtype, dataStart + begin), begin, end);
    }
}
