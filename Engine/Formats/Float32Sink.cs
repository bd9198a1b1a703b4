namespace DyDiT.Eval.Engine.Formats;

/// <summary>A write-only stream that converts little-endian element bytes of one dtype into float32 values.</summary>
internal sealed unsafe class Float32Sink(DType dtype, float* destination, int length) : WriteOnlySink
{
    private readonly int _itemSize = dtype.ItemSize();
    private readonly byte[] _partial = new byte[8];
    private int _partialBytes;

    public int Converted { get; private set; }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_partialBytes > 0)
        {
            int take = Math.Min(_itemSize - _partialBytes, buffer.Length);
            buffer[..take].CopyTo(_partial.AsSpan(_partialBytes));
            _partialBytes += take;
            buffer = buffer[take..];
            if (_partialBytes < _itemSize) return;
            Convert(_partial.AsSpan(0, _itemSize));
            _partialBytes = 0;
        }
        int whole = buffer.Length / _itemSize * _itemSize;
        Convert(buffer[..whole]);
        buffer[whole..].CopyTo(_partial);
        _partialBytes = buffer.Length - whole;
    }

    private void Convert(ReadOnlySpan<byte> bytes)
    {
        int n = bytes.Length / _itemSize;
        if (n == 0) return;
        if (Converted + n > length) throw new InvalidOperationException("more values than the destination holds");
        Float32Conversion.Convert(dtype, bytes, new Span<float>(destination + Converted, n));
        Converted += n;
    }

}
