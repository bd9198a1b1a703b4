using DyDiT.Eval.Engine.Formats;

namespace DyDiT.Eval.Engine.Tests.Torch;

internal static class TensorHash
{
    /// <summary>SHA-256 (lower-case hex) of the tensor's C-order little-endian bytes, streamed.</summary>
    public static string Sha256(StoredTensor t) => t.ValuesSha256();
}
