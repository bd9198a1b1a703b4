using System.Security.Cryptography;
using DyDiT.Eval.Engine.Formats;

namespace DyDiT.Eval.Engine.Tests.Torch;

internal static class TensorHash
{
    /// <summary>SHA-256 (lower-case hex) of the tensor's C-order little-endian bytes, streamed.</summary>
    public static string Sha256(StoredTensor t)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var sink = new HashStream(sha);
        t.CopyValuesTo(sink);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private sealed class HashStream(IncrementalHash hash) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            Written += buffer.Length;
        }
    }
}
