using System.Runtime.InteropServices;
using DyDiT.Eval.Engine.Formats.Zip;

namespace DyDiT.Eval.Engine.Formats.Npy;

/// <summary>
/// Streams arrays into a .npz that numpy loads: <c>BeginArray</c>, any number of <c>Write</c> calls (rows in C
/// order), <c>EndArray</c>, more arrays, then <see cref="Complete"/>. Memory is O(one write). The archive is
/// built under a temporary name in the target folder and renamed into place by <see cref="Complete"/>;
/// disposing without completing deletes it, so no half-written file is ever left behind. Same arrays in the
/// same order give byte-identical files.
/// </summary>
public sealed class NpzWriter : IDisposable, IAsyncDisposable
{
    private readonly string _tempPath;
    private readonly FileStream _file;
    private readonly ZipWriter _zip;
    private string? _name;
    private long _expectedBytes, _writtenBytes;
    private DType _dtype;
    private bool _completed;

    public NpzWriter(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(dir);
        _tempPath = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(Path)}.tmp-{Guid.NewGuid():N}");
        _file = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20);
        _zip = new ZipWriter(_file);
    }

    /// <summary>The final path (exists only after <see cref="Complete"/>).</summary>
    public string Path { get; }

    /// <summary>Starts member <c>{name}.npy</c> holding a C-order array of <paramref name="shape"/>.</summary>
    public void BeginArray(string name, DType dtype, params long[] shape)
    {
        if (_name != null) throw new InvalidOperationException($"array '{_name}' is still open");
        var header = NpyHeader.Format(dtype, shape);
        _zip.BeginEntry(name + ".npy");
        _zip.Write(header);
        _name = name;
        _dtype = dtype;
        _expectedBytes = shape.Aggregate((long)dtype.ItemSize(), (a, d) => checked(a * d));
        _writtenBytes = 0;
    }

    /// <summary>Appends raw little-endian element bytes (whole elements).</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (_name == null) throw new InvalidOperationException("BeginArray first");
        if (_writtenBytes + bytes.Length > _expectedBytes)
            throw new InvalidOperationException($"array '{_name}': writing {_writtenBytes + bytes.Length} bytes, the shape holds {_expectedBytes}");
        _zip.Write(bytes);
        _writtenBytes += bytes.Length;
    }

    /// <summary>Appends values; their type must have the array's item size (float for float32, long for int64, ...).</summary>
    public void Write<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        if (Marshal.SizeOf<T>() != _dtype.ItemSize())
            throw new ArgumentException($"{typeof(T).Name} values do not match dtype {_dtype.NumpyName()}");
        Write(MemoryMarshal.AsBytes(values));
    }

    public void EndArray()
    {
        if (_name == null) throw new InvalidOperationException("no open array");
        if (_writtenBytes != _expectedBytes)
            throw new InvalidOperationException($"array '{_name}': {_writtenBytes} bytes written, the shape needs {_expectedBytes}");
        _zip.EndEntry();
        _name = null;
    }

    /// <summary>Convenience: one whole array.</summary>
    public void WriteArray<T>(string name, DType dtype, long[] shape, ReadOnlySpan<T> values) where T : unmanaged
    {
        BeginArray(name, dtype, shape);
        Write(values);
        EndArray();
    }

    /// <summary>Finishes the archive, flushes it to disk and renames it to <see cref="Path"/> (replacing any old file).</summary>
    public void Complete()
    {
        if (_name != null) throw new InvalidOperationException($"array '{_name}' is still open");
        _zip.Finish();
        _file.Flush(flushToDisk: true);
        _file.Dispose();
        File.Move(_tempPath, Path, overwrite: true);
        _completed = true;
    }

    public void Dispose()
    {
        try
        {
            _file.Dispose(); // flushes what is buffered: fails again on a full disk
        }
        finally
        {
            if (!_completed) File.Delete(_tempPath);
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
