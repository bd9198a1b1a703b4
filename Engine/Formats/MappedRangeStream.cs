namespace DyDiT.Eval.Engine.Formats;

/// <summary>A read-only, seekable view of [offset, offset+length) of a mapped file.</summary>
internal sealed class MappedRangeStream(MappedFile file, long offset, long length) : Stream
{
    private long _position;

    public override int Read(Span<byte> buffer)
    {
        int n = (int)Math.Min(buffer.Length, length - _position);
        if (n <= 0) return 0;
        file.Read(offset + _position, buffer[..n]);
        _position += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override long Seek(long o, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => o,
            SeekOrigin.Current => _position + o,
            _ => length + o,
        };
        if (target < 0) throw new IOException("seek before the start of the range");
        return _position = target;
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => Seek(value, SeekOrigin.Begin); }
    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
