namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// One storage record of a checkpoint (a zip member <c>data/&lt;key&gt;</c> or a legacy raw record), shared by
/// every tensor that names its key. Its bytes stay in the mapped file. Legacy files only reveal where a
/// record lies after the object pickle, so the position is bound late (<see cref="Bind"/>).
/// </summary>
internal sealed class TorchStorage
{
    private readonly TorchStorage? _root;
    private readonly long _elementOffsetInRoot;
    private long _byteOffset = -1;

    public TorchStorage(MappedFile file, string key, DType dtype, long elementCount)
        : this(file, key, dtype, elementCount, null, 0)
    {
    }

    private TorchStorage(MappedFile file, string key, DType dtype, long elementCount, TorchStorage? root, long elementOffsetInRoot)
    {
        File = file;
        Key = key;
        DType = dtype;
        ElementCount = elementCount;
        _root = root;
        _elementOffsetInRoot = elementOffsetInRoot;
    }

    public MappedFile File { get; }

    public string Key { get; }

    public DType DType { get; }

    public long ElementCount { get; }

    public bool IsBound => _root?.IsBound ?? _byteOffset >= 0;

    public void Bind(long byteOffset) => _byteOffset = byteOffset;

    /// <summary>A legacy storage view (<c>view_metadata</c>): <paramref name="count"/> elements from <paramref name="offset"/>.</summary>
    public TorchStorage View(long offset, long count) => new(File, Key, DType, count, this, offset);

    /// <summary>File offset of element 0; throws when the record was never found.</summary>
    public long ByteOffset()
    {
        if (_root is not null)
            return _root.ByteOffset() + _elementOffsetInRoot * DType.ItemSize();
        if (_byteOffset < 0)
            throw new TensorFileException(File.Path, $"storage '{Key}' is referenced by a tensor but the file has no data record for it");
        return _byteOffset;
    }
}
