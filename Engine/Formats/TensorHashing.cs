using System.Security.Cryptography;

namespace DyDiT.Eval.Engine.Formats;

public static class TensorHashing
{
    /// <summary>
    /// Lower-case hex SHA-256 of the values as contiguous C-order little-endian bytes — the fingerprint the
    /// fixture manifests and <c>dydit-eval inspect</c> use. Streams, so multi-GB arrays need no big buffer.
    /// </summary>
    public static string ValuesSha256(this StoredTensor tensor, IProgress<long>? bytesHashed = null)
    {
        using var sink = new HashingSink(bytesHashed);
        tensor.CopyValuesTo(sink);
        return Convert.ToHexStringLower(sink.Finish());
    }

    /// <summary>A write-only stream that feeds an incremental SHA-256.</summary>
    private sealed class HashingSink(IProgress<long>? progress) : WriteOnlySink
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public byte[] Finish() => _hash.GetHashAndReset();

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            progress?.Report(buffer.Length);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
