using System.Buffers.Binary;
using System.Text;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>Hand-assembles pickle bytes opcode by opcode (for hostile and edge-case inputs).</summary>
internal sealed class PickleBuilder
{
    private readonly List<byte> _bytes = [];

    public PickleBuilder Op(byte op)
    {
        _bytes.Add(op);
        return this;
    }

    public PickleBuilder Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public PickleBuilder Proto(int p) => Op(0x80).Raw((byte)p);

    public PickleBuilder Global(string module, string name) => Op((byte)'c').Raw(Encoding.UTF8.GetBytes(module + "\n" + name + "\n"));

    public PickleBuilder Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        var len = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
        return Op((byte)'X').Raw(len).Raw(b);
    }

    public PickleBuilder ShortStr(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return Op(0x8c).Raw((byte)b.Length).Raw(b);
    }

    public PickleBuilder StackGlobal(string module, string name) => ShortStr(module).ShortStr(name).Op(0x93);

    public PickleBuilder Int(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        return Op((byte)'J').Raw(b);
    }

    public PickleBuilder Mark() => Op((byte)'(');

    public PickleBuilder Tuple1() => Op(0x85);

    public PickleBuilder Tuple2() => Op(0x86);

    public PickleBuilder Tuple() => Op((byte)'t');

    public PickleBuilder EmptyTuple() => Op((byte)')');

    public PickleBuilder EmptyDict() => Op((byte)'}');

    public PickleBuilder Reduce() => Op((byte)'R');

    public PickleBuilder Stop() => Op((byte)'.');

    public byte[] ToArray() => [.. _bytes];
}
