namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// The 32-bit Mersenne Twister (MT19937) with the classic <c>init_genrand</c> seeding, which is what
/// PyTorch's CPU generator runs: <c>torch.manual_seed(s)</c> seeds it with the low 32 bits of s.
/// </summary>
public sealed class Mt19937
{
    private const int N = 624;
    private const int M = 397;
    private const uint MatrixA = 0x9908B0DFu;
    private const uint UpperMask = 0x80000000u;
    private const uint LowerMask = 0x7FFFFFFFu;

    private readonly uint[] _state = new uint[N];
    private int _next;

    public Mt19937(ulong seed) => Seed(seed);

    /// <summary>Re-seeds with <c>seed &amp; 0xffffffff</c>.</summary>
    public void Seed(ulong seed)
    {
        _state[0] = (uint)seed;
        for (uint j = 1; j < N; j++)
        {
            uint prev = _state[j - 1];
            _state[j] = unchecked(1812433253u * (prev ^ (prev >> 30)) + j);
        }
        _next = N; // forces a twist before the first output
    }

    /// <summary>Next tempered 32-bit output.</summary>
    public uint NextUInt32()
    {
        if (_next >= N) Twist();
        uint y = _state[_next++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C5680u;
        y ^= (y << 15) & 0xEFC60000u;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        var s = _state;
        for (int k = 0; k < N; k++)
        {
            uint y = (s[k] & UpperMask) | (s[(k + 1) % N] & LowerMask);
            uint v = s[(k + M) % N] ^ (y >> 1);
            if ((y & 1) != 0) v ^= MatrixA;
            s[k] = v;
        }
        _next = 0;
    }
}
