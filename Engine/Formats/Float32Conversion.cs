using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace DyDiT.Eval.Engine.Formats;

/// <summary>Little-endian element bytes of any <see cref="DType"/> to float32 (float16/bfloat16 widen exactly, float64 and int64 round).</summary>
internal static class Float32Conversion
{
    public static void Convert(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (dtype)
        {
            case DType.Float32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.Float16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst); break;
            case DType.BFloat16:
                var bf = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case DType.Float64:
                var d = MemoryMarshal.Cast<byte, double>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)d[i];
                break;
            case DType.Int64:
                var l = MemoryMarshal.Cast<byte, long>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = l[i];
                break;
            case DType.Int32:
                var n = MemoryMarshal.Cast<byte, int>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = n[i];
                break;
            case DType.Int16:
                var s = MemoryMarshal.Cast<byte, short>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = s[i];
                break;
            case DType.Int8:
                for (int i = 0; i < dst.Length; i++) dst[i] = (sbyte)src[i];
                break;
            case DType.UInt8:
            case DType.Bool:
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
                break;
            default:
                throw new NotSupportedException($"no float32 conversion for {dtype}");
        }
    }
}
