using DyDiT.Eval.Engine.Formats.Zip;

namespace DyDiT.Eval.Engine.Formats.Npy;

/// <summary>
/// A .npz archive (numpy's zip of .npy members, stored or deflated, ZIP64 for &gt;4 GiB), memory-mapped. Arrays
/// are named after their members without ".npy" (<c>arr_0</c>, <c>labels</c>, <c>mu</c>) and read on demand.
/// </summary>
public sealed class NpzArchive : IDisposable
{
    private readonly MappedFile _file;
    private readonly Dictionary<string, NpyArray> _byName;

    private NpzArchive(string path, MappedFile file, List<NpyArray> arrays)
    {
        Path = path;
        _file = file;
        Arrays = arrays;
        _byName = arrays.ToDictionary(a => a.Name, StringComparer.Ordinal);
    }

    public string Path { get; }

    /// <summary>The arrays in member order.</summary>
    public IReadOnlyList<NpyArray> Arrays { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The array called <paramref name="name"/>; a missing one is a <see cref="TensorFileException"/> naming it.</summary>
    public NpyArray this[string name] => _byName.TryGetValue(name, out var a)
        ? a
        : throw new TensorFileException(Path, $"missing {name} in npz file (it has: {string.Join(", ", _byName.Keys)})");

    public static NpzArchive Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var index = ZipIndex.Read(file);
            var arrays = new List<NpyArray>();
            foreach (var memberName in index.Names)
            {
                if (memberName.EndsWith('/')) continue; // a folder entry
                index.TryGet(memberName, out var m);
                if (m.Encrypted) throw new TensorFileException(path, $"member '{memberName}' is encrypted");
                string name = memberName.EndsWith(".npy", StringComparison.Ordinal) ? memberName[..^4] : memberName;
                Func<Stream> open = m.Method switch
                {
                    0 => () => new MappedRangeStream(file, m.DataOffset, m.Size),
                    8 => () => NpyArray.Inflate(new MappedRangeStream(file, m.DataOffset, file.Length - m.DataOffset)),
                    _ => throw new TensorFileException(path, $"member '{memberName}' uses zip compression method {m.Method} (only stored and deflate are supported)"),
                };
                arrays.Add(NpyArray.Create(path, name, open, m.Size, m.Crc32));
            }
            return new NpzArchive(path, file, arrays);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => _file.Dispose();
}
