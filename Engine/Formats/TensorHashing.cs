using System.Security.Cryptography;

namespace DyDiT.Eval.Engine.Formats;

public static class TensorHashing
{
    /// <summary>
    /// Lower-case hex SHA-256 of the values as contiguous C-order little-endian bytes — the fingerprint the
    /// fixture manifests and <c>dydit-eval inspect</c> use. Streams, so multi-GB arrays need no big buffer.
    /// </summary>
    public static string ValuesSha256(this StoredTensor tensor)
    {
        using var sink = new HashingSink();
        tensor.CopyValuesTo(sink);
        return Convert.ToHexStringLower(sink.Finish());
    }

    /// <summary>A write-only stream that feeds an incremental SHA-256.</summary>
    private sealed class HashingSink : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public byte[] Finish() => _hash.GetHashAndReset();

        public override void Write(ReadOnlySpan<byte> buffer) => _hash.AppendData(buffer);

        public override void Write(byte[] buffer, int offset, int count) => _hash.AppendData(buffer, offset, count);

        public override void WriteByte(byte value) => Write([value]);

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
