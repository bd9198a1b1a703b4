using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace DyDiT.Eval.Engine.Formats.Safetensors;

/// <summary>
/// Writes float32 tensors as a <c>.safetensors</c> file that the <c>safetensors</c> library, diffusers'
/// <c>from_pretrained</c> and our <see cref="SafetensorsFile"/> read: an 8-byte little-endian header length, the
/// JSON header (optional <c>__metadata__</c> string map first, then one <c>{"dtype": "F32", "shape": […],
/// "data_offsets": [begin, end]}</c> entry per tensor, in ordinal key order) padded with spaces to a multiple of
/// 8 bytes so the data section is aligned, then the tensors' bytes back to back in that same order — the layout
/// the reference writer produces for tensors of one dtype. Same tensors and metadata give byte-identical files.
/// Tensors are held by reference until <see cref="Save"/>; do not change their arrays in between.
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly SortedDictionary<string, (long[] Shape, float[] Values)> _tensors = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    /// <summary>Tensors added so far.</summary>
    public int Count => _tensors.Count;

    /// <summary>Adds tensor <paramref name="name"/>: <paramref name="values"/> in C order with shape <paramref name="shape"/>.</summary>
    public void Add(string name, float[] values, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(shape);
        if (name.Length == 0 || name == "__metadata__") throw new ArgumentException($"'{name}' cannot name a tensor", nameof(name));
        if (shape.Any(d => d < 0)) throw new ArgumentException($"'{name}': shape [{string.Join(", ", shape)}] has a negative size", nameof(shape));
        long numel = shape.Aggregate(1L, (a, d) => checked(a * d));
        if (numel != values.Length)
            throw new ArgumentException($"'{name}': shape [{string.Join(", ", shape)}] holds {numel} values, {values.Length} given", nameof(values));
        if (!_tensors.TryAdd(name, ((long[])shape.Clone(), values))) throw new ArgumentException($"duplicate tensor name '{name}'", nameof(name));
    }

    /// <summary>Sets a <c>__metadata__</c> entry (e.g. <c>format</c> = <c>pt</c>, which torch-saved files carry).</summary>
    public void SetMetadata(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata[key] = value;
    }

    /// <summary>Writes the file under a temporary name in the same folder and renames it to <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("writing safetensors needs a little-endian machine");
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var header = Header();
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                file.Write(length);
                file.Write(header);
                foreach (var (_, (_, values)) in _tensors) file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>The header JSON, padded with spaces so that 8 + its length is a multiple of 8.</summary>
    private byte[] Header()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (_metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, (shape, values)) in _tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += values.LongLength * sizeof(float);
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
