using System.Buffers;

namespace DyDiT.Eval.Engine.Formats.Torch;

/// <summary>
/// A tensor of a torch checkpoint: a strided view (<see cref="StorageOffset"/>, <see cref="Stride"/>) of a
/// storage whose bytes stay in the memory-mapped file until read. Several tensors may view one storage.
/// Reading requires the owning <see cref="TorchCheckpoint"/> (or the mapping kept by
/// <see cref="TorchCheckpoint.LoadWeights"/>) to be alive.
/// </summary>
public sealed class TorchTensor : StoredTensor
{
    private const int ChunkBytes = 1 << 20;
    private const int MaxRank = 64;

    private readonly TorchStorage _storage;
    private readonly long[] _shape;
    private readonly long[] _stride;
    private readonly bool _contiguous;

    private TorchTensor(string name, TorchStorage storage, long storageOffset, long[] shape, long[] stride, bool requiresGrad, bool isParameter)
        : base(name, shape, storage.DType)
    {
        _storage = storage;
        _shape = shape;
        _stride = stride;
        StorageOffset = storageOffset;
        RequiresGrad = requiresGrad;
        IsParameter = isParameter;
        _contiguous = IsCContiguous(shape, stride);
    }

    /// <summary>Elements to step in the storage per index of each dimension (torch strides are in elements).</summary>
    public IReadOnlyList<long> Stride => _stride;

    /// <summary>Index of this tensor's first element in its storage.</summary>
    public long StorageOffset { get; }

    /// <summary>The storage record's key (<c>data/&lt;key&gt;</c> in a zip); tensors with equal keys share memory.</summary>
    public string StorageKey => _storage.Key;

    /// <summary>Elements in the whole storage this tensor views.</summary>
    public long StorageElementCount => _storage.ElementCount;

    public bool RequiresGrad { get; }

    /// <summary>True for an <c>nn.Parameter</c> (rebuilt through <c>torch._utils._rebuild_parameter</c>).</summary>
    public bool IsParameter { get; }

    /// <summary>Validates a view of <paramref name="storage"/> and builds the tensor (name assigned later).</summary>
    internal static TorchTensor Create(TorchStorage storage, long storageOffset, long[] shape, long[] stride, bool requiresGrad, string path)
    {
        string View() => $"size [{string.Join(", ", shape)}], stride [{string.Join(", ", stride)}], offset {storageOffset}";
        if (shape.Length != stride.Length)
            throw new TensorFileException(path, $"tensor on storage '{storage.Key}' has {shape.Length} sizes but {stride.Length} strides");
        if (shape.Length > MaxRank)
            throw new TensorFileException(path, $"tensor on storage '{storage.Key}' has rank {shape.Length}; at most {MaxRank} is supported");
        if (storageOffset < 0 || shape.Any(s => s < 0) || stride.Any(s => s < 0))
            throw new TensorFileException(path, $"tensor on storage '{storage.Key}' has a negative size, stride or offset ({View()})");
        long limit = long.MaxValue / 8;
        long n = 1;
        foreach (var d in shape)
        {
            if (d != 0 && n > limit / d)
                throw new TensorFileException(path, $"tensor on storage '{storage.Key}' has an impossible element count ({View()})");
            n *= d;
        }
        if (n > 0)
        {
            long last = storageOffset;
            try
            {
                for (int i = 0; i < shape.Length; i++) last = checked(last + (shape[i] - 1) * stride[i]);
            }
            catch (OverflowException)
            {
                last = long.MaxValue;
            }
            if (last >= storage.ElementCount)
                throw new TensorFileException(path, $"tensor view ({View()}) reaches element {last} but storage '{storage.Key}' holds only {storage.ElementCount} elements");
        }
        return new TorchTensor("", storage, storageOffset, shape, stride, requiresGrad, isParameter: false);
    }

    /// <summary>
    /// Most elements a view may have beyond its storage's own count. A view that repeats storage elements (a zero
    /// stride from <c>expand</c>, overlapping strides) has more logical elements than its storage; reading or hashing
    /// it costs its logical size, which a few bytes of pickle can make astronomical (a 4-element storage seen as
    /// 10^5 × 10^5). Such views are accepted up to this many elements (64 MiB of float32, well under a second to read);
    /// a view no larger than its storage is always accepted, so the work stays bounded by the file's size.
    /// </summary>
    internal const long MaxRepeatedViewElements = 1L << 24;

    /// <summary>Refuses a view whose logical size is absurd for its storage (see <see cref="MaxRepeatedViewElements"/>); names the tensor.</summary>
    internal void CheckLogicalSize(string path)
    {
        if (ElementCount <= _storage.ElementCount || ElementCount <= MaxRepeatedViewElements) return;
        throw new TensorFileException(path,
            $"tensor '{(Name.Length == 0 ? "(root)" : Name)}' is a view of {ElementCount} elements (size [{string.Join(", ", _shape)}], stride [{string.Join(", ", _stride)}]) " +
            $"over storage '{_storage.Key}' of only {_storage.ElementCount} elements; views that repeat storage elements (zero or overlapping strides) " +
            $"are accepted up to {MaxRepeatedViewElements} elements, so this is refused rather than expanded");
    }

    internal TorchTensor AsParameter(bool requiresGrad) => new(Name, _storage, StorageOffset, _shape, _stride, requiresGrad, isParameter: true);

    internal TorchTensor WithName(string name) => new(name, _storage, StorageOffset, _shape, _stride, RequiresGrad, IsParameter);

    internal bool SharesStorageWith(TorchTensor other) => ReferenceEquals(_storage, other._storage) || (_storage.Key == other._storage.Key && ReferenceEquals(_storage.File, other._storage.File));

    public override void CopyValuesTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (ElementCount == 0) return;
        int isz = DType.ItemSize();
        long perChunk = Math.Max(1, ChunkBytes / isz);
        var buffer = ArrayPool<byte>.Shared.Rent((int)(Math.Min(perChunk, ElementCount) * isz));
        try
        {
            for (long first = 0; first < ElementCount; first += perChunk)
            {
                int count = (int)Math.Min(perChunk, ElementCount - first);
                var span = buffer.AsSpan(0, count * isz);
                CopyElements(first, count, span);
                destination.Write(span);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Copies <paramref name="count"/> elements starting at C-order index <paramref name="first"/> as little-endian bytes.</summary>
    internal void CopyElements(long first, int count, Span<byte> destination)
    {
        int isz = DType.ItemSize();
        long baseByte = _storage.ByteOffset();
        var file = _storage.File;
        if (_contiguous)
        {
            file.Read(baseByte + (StorageOffset + first) * isz, destination[..(count * isz)]);
            return;
        }

        int rank = _shape.Length;
        var idx = new long[rank];
        long rem = first;
        long elem = StorageOffset;
        for (int d = rank - 1; d >= 0; d--)
        {
            idx[d] = rem % _shape[d];
            rem /= _shape[d];
            elem += idx[d] * _stride[d];
        }

        using var pin = file.Pin();
        int written = 0;
        long innerStride = _stride[rank - 1];
        while (written < count)
        {
            int run = (int)Math.Min(_shape[rank - 1] - idx[rank - 1], count - written);
            var dst = destination.Slice(written * isz, run * isz);
            if (innerStride == 1)
            {
                pin.Span(baseByte + elem * isz, run * isz).CopyTo(dst);
            }
            else
            {
                for (int k = 0; k < run; k++)
                    pin.Span(baseByte + (elem + k * innerStride) * isz, isz).CopyTo(dst.Slice(k * isz, isz));
            }
            written += run;
            idx[rank - 1] += run;
            elem += run * innerStride;
            for (int d = rank - 1; d > 0 && idx[d] == _shape[d]; d--)
            {
                elem -= idx[d] * _stride[d];
                idx[d] = 0;
                idx[d - 1]++;
                elem += _stride[d - 1];
            }
        }
    }

    private static bool IsCContiguous(long[] shape, long[] stride)
    {
        long expected = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 1) continue;
            if (shape[d] == 0) return true;
            if (stride[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }
}
