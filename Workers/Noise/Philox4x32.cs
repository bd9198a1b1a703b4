namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// The Philox4x32-10 counter-based generator of Salmon et al. (Random123): a keyed bijection from a
/// 128-bit counter to 128 random bits. Ten rounds; the key is bumped by the Weyl constants between rounds.
/// </summary>
public static class Philox4x32
{
    private const uint MulA = 0xD2511F53u;
    private const uint MulB = 0xCD9E8D57u;
    private const uint WeylA = 0x9E3779B9u;
    private const uint WeylB = 0xBB67AE85u;

    /// <summary>Encrypts counter (c0..c3) with key (k0, k1); the result overwrites the counter words.</summary>
    public static void Block(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            if (round > 0)
            {
                k0 = unchecked(k0 + WeylA);
                k1 = unchecked(k1 + WeylB);
            }
            ulong pa = (ulong)MulA * c0;
            ulong pb = (ulong)MulB * c2;
            uint n0 = (uint)(pb >> 32) ^ c1 ^ k0;
            uint n1 = (uint)pb;
            uint n2 = (uint)(pa >> 32) ^ c3 ^ k1;
            uint n3 = (uint)pa;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        }
    }
}
