using System.IO.MemoryMappedFiles;

namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// A whole file mapped read-only into memory. Readers hand out views of it instead of copying, so a multi-GB
/// checkpoint costs address space, not heap. Every access is bounds-checked and pins the mapping for its
/// duration, so a read racing with <see cref="Dispose"/> fails cleanly instead of touching unmapped memory.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private int _disposed;

    private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        Length = length;
    }

    public string Path { get; }

    public long Length { get; }

    /// <summary>Maps <paramref name="path"/>; an empty file yields an empty mapping (there is nothing to map).</summary>
    public static MappedFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("tensor file readers assume a little-endian machine");
        if (Directory.Exists(path)) throw new TensorFileException(path, "is a directory, not a file");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        try
        {
            long length = fs.Length;
            if (length == 0)
            {
                fs.Dispose();
                return new MappedFile(path, null, null, 0);
            }
            var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            try
            {
                var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                return new MappedFile(path, map, view, length);
            }
            catch
            {
                map.Dispose();
                throw;
            }
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>True when [offset, offset+count) lies inside the file.</summary>
    public bool Contains(long offset, long count) => offset >= 0 && count >= 0 && offset <= Length && count <= Length - offset;

    /// <summary>Copies <paramref name="destination"/>.Length bytes starting at <paramref name="offset"/>.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        if (destination.IsEmpty) return;
        if (!Contains(offset, destination.Length))
            throw new TensorFileException(Path, $"read of {destination.Length} bytes at offset {offset} runs past the end of the {Length}-byte file");
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || _view is null, this);
        var handle = _view.SafeMemoryMappedViewHandle;
        byte* p = null;
        handle.AcquirePointer(ref p);
        try
        {
            new ReadOnlySpan<byte>(p + _view.PointerOffset + offset, destination.Length).CopyTo(destination);
        }
        finally
        {
            handle.ReleasePointer();
        }
    }

    /// <summary>Copies a range into a new array (for small structures such as pickles and zip directories).</summary>
    public byte[] ReadArray(long offset, long count)
    {
        if (!Contains(offset, count))
            throw new TensorFileException(Path, $"read of {count} bytes at offset {offset} runs past the end of the {Length}-byte file");
        if (count > Array.MaxLength)
            throw new TensorFileException(Path, $"a {count}-byte record is too large to read into memory");
        var result = new byte[count];
        Read(offset, result);
        return result;
    }

    /// <summary>
    /// Pins the mapping until the returned handle is disposed, for callers that gather many small pieces
    /// (strided tensors) and should not pay the pin per element.
    /// </summary>
    public Pinned Pin()
    {
        if (_view is null) return new Pinned(this, null, null);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var handle = _view.SafeMemoryMappedViewHandle;
        byte* p = null;
        handle.AcquirePointer(ref p);
        return new Pinned(this, handle, p + _view.PointerOffset);
    }

    /// <summary>The mapping held in place; <see cref="Span"/> gives bounds-checked views of the file.</summary>
    public readonly struct Pinned : IDisposable
    {
        private readonly MappedFile _file;
        private readonly System.Runtime.InteropServices.SafeBuffer? _handle;
        private readonly byte* _base;

        internal Pinned(MappedFile file, System.Runtime.InteropServices.SafeBuffer? handle, byte* basePointer)
        {
            _file = file;
            _handle = handle;
            _base = basePointer;
        }

        public ReadOnlySpan<byte> Span(long offset, int count)
        {
            if (count == 0) return default;
            if (!_file.Contains(offset, count))
                throw new TensorFileException(_file.Path, $"read of {count} bytes at offset {offset} runs past the end of the {_file.Length}-byte file");
            return new ReadOnlySpan<byte>(_base + offset, count);
        }

        public void Dispose() => _handle?.ReleasePointer();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _view?.Dispose();
        _map?.Dispose();
    }
}
