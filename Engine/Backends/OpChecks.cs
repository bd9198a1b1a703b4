using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends;

/// <summary>
/// Argument checks shared by every backend, named after the op they check: shapes, channel windows, block lists.
/// Each throws the op's exception (type and message) in a fixed order, and returns the sizes the kernels need.
/// The checks that come after an early return for empty work stay with the backends.
/// </summary>
internal static class OpChecks
{
    public static void SameShape(Tensor x, Tensor y)
    {
        if (!x.Shape.SequenceEqual(y.Shape)) throw new ArgumentException($"shapes differ: {x} vs {y}");
    }

    public static void SameShape(Tensor x, Tensor y, Tensor z)
    {
        SameShape(x, y);
        SameShape(x, z);
    }

    // ---- matrix products ----

    /// <summary>C (M, N) = op(A) · op(B): the product's M, N and K.</summary>
    public static (int M, int N, int K) Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c)
    {
        if (a.Rank != 2 || b.Rank != 2 || c.Rank != 2)
            throw new ArgumentException($"Gemm takes matrices, got {a}, {b}, {c}");
        int m = transposeA ? a.Dim(1) : a.Dim(0);
        int k = transposeA ? a.Dim(0) : a.Dim(1);
        int kb = transposeB ? b.Dim(1) : b.Dim(0);
        int n = transposeB ? b.Dim(0) : b.Dim(1);
        if (k != kb || c.Dim(0) != m || c.Dim(1) != n)
            throw new ArgumentException($"Gemm shapes do not agree: op(A) {m}x{k}, op(B) {kb}x{n}, C {c.Dim(0)}x{c.Dim(1)}");
        return (m, n, k);
    }

    public static void BatchedGemm(int batch, int m, int n, int k, Tensor a, long strideA, Tensor b, long strideB, Tensor c, long strideC)
    {
        BatchExtent(a, batch, strideA, (long)m * k, "A");
        BatchExtent(b, batch, strideB, (long)k * n, "B");
        BatchExtent(c, batch, strideC, (long)m * n, "C");
    }

    private static void BatchExtent(Tensor t, int batch, long stride, long matrix, string which)
    {
        if (batch < 0 || stride < 0) throw new ArgumentException($"negative batch or stride for {which}");
        long needed = batch == 0 ? 0 : (batch - 1) * stride + matrix;
        if (needed > t.Length)
            throw new ArgumentException($"BatchedGemm: {which} needs {needed} elements ({batch} matrices, stride {stride}) but {t} has {t.Length}");
    }

    // ---- convolution, pooling, channels ----

    /// <summary>A PyTorch (Cout, Cin, KH, KW) conv weight: its number of values.</summary>
    public static long PackConv2dWeight(ReadOnlySpan<float> weightOihw, int outChannels, int inChannels, int kernelH, int kernelW)
    {
        if (outChannels <= 0 || inChannels <= 0 || kernelH <= 0 || kernelW <= 0)
            throw new ArgumentException($"conv weight dims must be positive: ({outChannels}, {inChannels}, {kernelH}, {kernelW})");
        long n = (long)outChannels * inChannels * kernelH * kernelW;
        if (weightOihw.Length != n)
            throw new ArgumentException($"conv weight ({outChannels}, {inChannels}, {kernelH}, {kernelW}) needs {n} values, got {weightOihw.Length}");
        return n;
    }

    public static ConvShape Conv2d(Tensor x, Tensor packedWeight, Tensor? bias, Conv2dParams p, Tensor destination, int xOff, int yOff)
    {
        if (x.Rank != 4) throw new ArgumentException($"Conv2d input must be (N, H, W, C), got {x}");
        if (packedWeight.Rank != 4) throw new ArgumentException($"Conv2d weight must come from PackConv2dWeight, got {packedWeight}");
        if (p.StrideH <= 0 || p.StrideW <= 0 || p.PadH < 0 || p.PadW < 0)
            throw new ArgumentException($"Conv2d: bad stride/padding {p}");
        var g = new ConvShape(x, packedWeight, p, destination, xOff, yOff);
        if (xOff < 0 || xOff + g.Cin > g.Cx)
            throw new ArgumentException($"Conv2d: input channels [{xOff}, {xOff + g.Cin}) outside {x}");
        if (g.OH <= 0 || g.OW <= 0)
            throw new ArgumentException($"Conv2d: kernel {g.KH}x{g.KW} does not fit {x} with padding ({g.PH}, {g.PW})");
        var y = destination;
        if (y.Rank != 4 || y.Dim(0) != g.N || y.Dim(1) != g.OH || y.Dim(2) != g.OW || yOff < 0 || yOff + g.Cout > g.Cy)
            throw new ArgumentException($"Conv2d: destination {y} cannot hold ({g.N}, {g.OH}, {g.OW}, {g.Cout}) at channel {yOff}");
        if (bias is not null && bias.Length != g.Cout)
            throw new ArgumentException($"Conv2d: bias {bias} does not match {g.Cout} output channels");
        if (ReferenceEquals(x.Storage, y.Storage)) throw new ArgumentException("Conv2d cannot run in place");
        return g;
    }

    /// <summary>x (…, C) + bias (C): C (1 for a scalar).</summary>
    public static int BiasActivation(Tensor x, Tensor bias, Tensor destination)
    {
        SameShape(x, destination);
        int cols = x.Rank == 0 ? 1 : x.Dim(-1);
        if (bias.Length != cols) throw new ArgumentException($"bias {bias} does not match the last dimension of {x}");
        return cols;
    }

    /// <summary>MaxPool2d / AvgPool2d (<paramref name="op"/>): x (N, H, W, C) → y (N, OH, OW, Cy) at channel yOff.</summary>
    public static PoolShape Pool2d(string op, Tensor x, int k, int s, int p, Tensor y, int yOff)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op} input must be (N, H, W, C), got {x}");
        if (k <= 0 || s <= 0 || p < 0 || 2 * p > k)
            throw new ArgumentException($"{op}: kernel {k}, stride {s}, padding {p} not allowed (padding at most half the kernel)");
        int n = x.Dim(0), h = x.Dim(1), w = x.Dim(2), c = x.Dim(3);
        int oh = Conv2dParams.OutputSize(h, k, s, p), ow = Conv2dParams.OutputSize(w, k, s, p);
        if (oh <= 0 || ow <= 0) throw new ArgumentException($"{op}: window {k} does not fit {x}");
        if (y.Rank != 4 || y.Dim(0) != n || y.Dim(1) != oh || y.Dim(2) != ow || yOff < 0 || yOff + c > y.Dim(3))
            throw new ArgumentException($"{op}: destination {y} cannot hold ({n}, {oh}, {ow}, {c}) at channel {yOff}");
        if (ReferenceEquals(x.Storage, y.Storage)) throw new ArgumentException($"{op} cannot run in place");
        return new PoolShape(n, h, w, c, k, s, p, oh, ow, y.Dim(3), yOff);
    }

    /// <summary>x (N, H, W, C) → y (N, C): images, pixels per image, channels.</summary>
    public static (int N, int Pixels, int C) GlobalAvgPool(Tensor x, Tensor destination)
    {
        if (x.Rank != 4) throw new ArgumentException($"GlobalAvgPool input must be (N, H, W, C), got {x}");
        int n = x.Dim(0), hw = x.Dim(1) * x.Dim(2), c = x.Dim(3);
        if (destination.Rank != 2 || destination.Dim(0) != n || destination.Dim(1) != c)
            throw new ArgumentException($"GlobalAvgPool: destination {destination} must be ({n}, {c})");
        if (hw == 0) throw new ArgumentException($"GlobalAvgPool of an empty map {x}");
        return (n, hw, c);
    }

    /// <summary>The channel counts of source and destination.</summary>
    public static (int Cs, int Cd) CopyChannels(Tensor source, int sourceChannelOffset, int count, Tensor destination, int destinationChannelOffset)
    {
        if (source.Rank == 0 || destination.Rank != source.Rank || !source.Shape[..^1].SequenceEqual(destination.Shape[..^1]))
            throw new ArgumentException($"CopyChannels: {source} and {destination} differ in their leading dimensions");
        int cs = source.Dim(-1), cd = destination.Dim(-1);
        if (count < 0 || sourceChannelOffset < 0 || sourceChannelOffset + count > cs || destinationChannelOffset < 0 || destinationChannelOffset + count > cd)
            throw new ArgumentException($"CopyChannels: {count} channels from {sourceChannelOffset} of {source} to {destinationChannelOffset} of {destination} out of range");
        return (cs, cd);
    }

    public static void ConcatChannels(IReadOnlyList<Tensor> parts, Tensor destination)
    {
        int total = 0;
        foreach (var t in parts) total += t.Rank == 0 ? 1 : t.Dim(-1);
        if (destination.Rank == 0 || destination.Dim(-1) != total)
            throw new ArgumentException($"ConcatChannels: parts have {total} channels in all, destination {destination} has {(destination.Rank == 0 ? 1 : destination.Dim(-1))}");
    }

    /// <summary>x (N, H, W, C) → y (N, 2H, 2W, C): N, H, W, C of x.</summary>
    public static (int N, int H, int W, int C) UpsampleNearest2x(Tensor x, Tensor destination)
    {
        if (x.Rank != 4 || destination.Rank != 4)
            throw new ArgumentException($"UpsampleNearest2x takes (N, H, W, C) images, got {x} → {destination}");
        int n = x.Dim(0), h = x.Dim(1), w = x.Dim(2), c = x.Dim(3);
        if (destination.Dim(0) != n || destination.Dim(1) != 2 * h || destination.Dim(2) != 2 * w || destination.Dim(3) != c)
            throw new ArgumentException($"UpsampleNearest2x: {x} needs a destination of [{n}, {2 * h}, {2 * w}, {c}], got {destination}");
        return (n, h, w, c);
    }

    /// <summary>x (…, R, C) → y (…, C, R): the source's R and C.</summary>
    public static (int Rows, int Cols) TransposeLastTwo(Tensor x, Tensor destination)
    {
        if (x.Rank < 2 || destination.Rank != x.Rank)
            throw new ArgumentException($"TransposeLastTwo takes (…, R, C) → (…, C, R), got {x} → {destination}");
        for (int d = 0; d < x.Rank - 2; d++)
            if (x.Dim(d) != destination.Dim(d))
                throw new ArgumentException($"TransposeLastTwo: leading dimensions differ, {x} → {destination}");
        int rows = x.Dim(-2), cols = x.Dim(-1);
        if (destination.Dim(-2) != cols || destination.Dim(-1) != rows)
            throw new ArgumentException($"TransposeLastTwo: {x} needs a destination ending in [{cols}, {rows}], got {destination}");
        return (rows, cols);
    }

    /// <summary>x (N, …, C): N and C.</summary>
    public static (int N, int C) GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, Tensor destination)
    {
        SameShape(x, destination);
        if (x.Rank < 2) throw new ArgumentException($"GroupNorm takes (N, …, C), got {x}");
        int n = x.Dim(0), c = x.Dim(-1);
        if (groups <= 0 || c % groups != 0)
            throw new ArgumentException($"GroupNorm: {c} channels cannot be split into {groups} groups");
        foreach (var (t, what) in new[] { (weight, "weight"), (bias, "bias") })
            if (t is not null && (t.Rank != 1 || t.Dim(0) != c))
                throw new ArgumentException($"GroupNorm: {what} must be ({c}), got {t}");
        return (n, c);
    }

    // ---- transformer ----

    /// <summary>qkv (B, T, 3·C) → y (B, T, C): B, T and C.</summary>
    public static (int B, int T, int C) MultiHeadAttention(Tensor qkv, int heads, Tensor destination)
    {
        if (qkv.Rank != 3 || qkv.Dim(2) % 3 != 0) throw new ArgumentException($"MultiHeadAttention: qkv must be (B, T, 3·C), got {qkv}");
        int b = qkv.Dim(0), t = qkv.Dim(1), c = qkv.Dim(2) / 3;
        if (heads <= 0 || c % heads != 0) throw new ArgumentException($"MultiHeadAttention: {c} channels do not split into {heads} heads");
        if (destination.Rank != 3 || destination.Dim(0) != b || destination.Dim(1) != t || destination.Dim(2) != c)
            throw new ArgumentException($"MultiHeadAttention: destination must be ({b}, {t}, {c}), got {destination}");
        return (b, t, c);
    }

    /// <summary>
    /// q (B, N, Cq), kv (B, M, Ckv), bias (1 or H, N, M) or null → y (B, N, C). Empty is set when there is nothing to
    /// compute (B, N or C is 0); otherwise attention over zero keys is refused.
    /// </summary>
    public static AttentionShape ScaledDotProductAttention(Tensor q, int queryChannelOffset, Tensor kv, int keyChannelOffset, int valueChannelOffset,
        int heads, Tensor? bias, Tensor destination)
    {
        const string op = "ScaledDotProductAttention";
        if (q.Rank != 3 || kv.Rank != 3 || destination.Rank != 3)
            throw new ArgumentException($"{op}: q, kv and destination must be (B, tokens, channels), got {q}, {kv}, {destination}");
        int b = destination.Dim(0), n = destination.Dim(1), c = destination.Dim(2), m = kv.Dim(1);
        int cq = q.Dim(2), ckv = kv.Dim(2);
        if (q.Dim(0) != b || kv.Dim(0) != b || q.Dim(1) != n)
            throw new ArgumentException($"{op}: q {q} and kv {kv} do not fit destination {destination}");
        if (heads <= 0 || c % heads != 0) throw new ArgumentException($"{op}: {c} channels do not split into {heads} heads");
        if (queryChannelOffset < 0 || queryChannelOffset + c > cq)
            throw new ArgumentException($"{op}: query channels [{queryChannelOffset}, {queryChannelOffset + c}) are outside {q}");
        if (keyChannelOffset < 0 || keyChannelOffset + c > ckv || valueChannelOffset < 0 || valueChannelOffset + c > ckv)
            throw new ArgumentException($"{op}: key [{keyChannelOffset}, +{c}) or value [{valueChannelOffset}, +{c}) channels are outside {kv}");
        int biasHeads = 0;
        if (bias != null)
        {
            if (bias.Rank != 3 || (bias.Dim(0) != 1 && bias.Dim(0) != heads) || bias.Dim(1) != n || bias.Dim(2) != m)
                throw new ArgumentException($"{op}: bias must be (1 or {heads}, {n}, {m}), got {bias}");
            biasHeads = bias.Dim(0);
        }
        bool empty = b == 0 || n == 0 || c == 0;
        if (!empty && m == 0) throw new ArgumentException($"{op}: attention over zero keys ({kv})");
        return new AttentionShape(b, n, m, c, cq, ckv, biasHeads, empty);
    }

    // ---- patches and guidance ----

    /// <summary>x (B, C, H, W) → y (B, Gh·Gw, C·p·p).</summary>
    public static PatchShape Patchify(Tensor x, int patch, Tensor destination)
    {
        if (x.Rank != 4) throw new ArgumentException($"Patchify: x must be (B, C, H, W), got {x}");
        int b = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), p = patch;
        PatchGrid("Patchify", h, w, p);
        int gh = h / p, gw = w / p, f = c * p * p;
        if (destination.Rank != 3 || destination.Dim(0) != b || destination.Dim(1) != gh * gw || destination.Dim(2) != f)
            throw new ArgumentException($"Patchify: destination must be ({b}, {gh * gw}, {f}), got {destination}");
        return new PatchShape(b, c, h, w, p, gh, gw, f);
    }

    /// <summary>x (B, Gh·Gw, p·p·C) → y (B, C, H, W), the image size taken from y.</summary>
    public static PatchShape Unpatchify(Tensor x, int patch, Tensor destination)
    {
        if (destination.Rank != 4) throw new ArgumentException($"Unpatchify: destination must be (B, C, H, W), got {destination}");
        int b = destination.Dim(0), c = destination.Dim(1), h = destination.Dim(2), w = destination.Dim(3), p = patch;
        PatchGrid("Unpatchify", h, w, p);
        int gh = h / p, gw = w / p, f = p * p * c;
        if (x.Rank != 3 || x.Dim(0) != b || x.Dim(1) != gh * gw || x.Dim(2) != f)
            throw new ArgumentException($"Unpatchify: x must be ({b}, {gh * gw}, {f}) for destination {destination}, got {x}");
        return new PatchShape(b, c, h, w, p, gh, gw, f);
    }

    private static void PatchGrid(string op, int h, int w, int p)
    {
        if (p <= 0 || h % p != 0 || w % p != 0)
            throw new ArgumentException($"{op}: a {h}×{w} image does not split into {p}×{p} patches");
    }

    /// <summary>x (2n, C, …) with 0 ≤ guidedChannels ≤ C; returns C.</summary>
    public static int ClassifierFreeGuidance(Tensor x, int guidedChannels, Tensor destination)
    {
        SameShape(x, destination);
        if (x.Rank < 2 || x.Dim(0) % 2 != 0)
            throw new ArgumentException($"ClassifierFreeGuidance: x must be (2n, C, …) with an even batch, got {x}");
        int channels = x.Dim(1);
        if (guidedChannels < 0 || guidedChannels > channels)
            throw new ArgumentException($"ClassifierFreeGuidance: {guidedChannels} guided channels of {x}");
        return channels;
    }

    // ---- DyDiT: row lists and block lists ----

    /// <summary>A tensor as rows of its last dimension.</summary>
    public static (int Rows, int Width) RowsAndWidth(Tensor t, string op)
    {
        if (t.Rank == 0) throw new ArgumentException($"{op}: {t} has no rows");
        int c = t.Dim(-1);
        long rows = c == 0 ? 0 : t.Length / c;
        if (rows > int.MaxValue) throw new ArgumentException($"{op}: {t} has too many rows");
        return ((int)rows, c);
    }

    public static void RowList(Tensor t, int rows, int width, string op)
    {
        var (r, c) = RowsAndWidth(t, op);
        if (c != width || r != rows) throw new ArgumentException($"{op}: expected {rows} rows of {width} values, got {t}");
    }

    /// <summary>y (R, n·bs) = x (R, K) · W[rows of the blocks]ᵀ + b: R, K and the output width n·bs.</summary>
    public static (int Rows, int K, int Width) LinearRowBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination)
    {
        var (outFeatures, k) = WeightShape(weight, bias, "LinearRowBlocks");
        var (rows, xk) = RowsAndWidth(x, "LinearRowBlocks");
        if (xk != k) throw new ArgumentException($"LinearRowBlocks: x {x} does not have the weight's {k} input features");
        Blocks(blocks, blockSize, outFeatures, "LinearRowBlocks", "output rows");
        int width = blocks.Length * blockSize;
        RowList(destination, rows, width, "LinearRowBlocks");
        return (rows, k, width);
    }

    /// <summary>y (R, O) = x (R, n·bs) · W[:, columns of the blocks]ᵀ + b: R, O, the weight's K and x's width n·bs.</summary>
    public static (int Rows, int OutFeatures, int K, int Width) LinearColumnBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination)
    {
        var (outFeatures, k) = WeightShape(weight, bias, "LinearColumnBlocks");
        Blocks(blocks, blockSize, k, "LinearColumnBlocks", "input columns");
        int width = blocks.Length * blockSize;
        var (rows, xWidth) = RowsAndWidth(x, "LinearColumnBlocks");
        if (xWidth != width) throw new ArgumentException($"LinearColumnBlocks: x {x} must hold {blocks.Length} blocks of {blockSize} columns");
        RowList(destination, rows, outFeatures, "LinearColumnBlocks");
        return (rows, outFeatures, k, width);
    }

    /// <summary>How many blocks from index <paramref name="j"/> on are consecutive (block i + 1 follows block i).</summary>
    public static int RunLength(ReadOnlySpan<int> blocks, int j)
    {
        int run = 1;
        while (j + run < blocks.Length && blocks[j + run] == blocks[j + run - 1] + 1) run++;
        return run;
    }

    private static (int Out, int In) WeightShape(Tensor weight, Tensor bias, string op)
    {
        if (weight.Rank != 2) throw new ArgumentException($"{op}: weight must be (out, in), got {weight}");
        if (bias.Rank != 1 || bias.Dim(0) != weight.Dim(0)) throw new ArgumentException($"{op}: bias {bias} does not match weight {weight}");
        return (weight.Dim(0), weight.Dim(1));
    }

    private static void Blocks(ReadOnlySpan<int> blocks, int blockSize, int extent, string op, string what)
    {
        if (blockSize <= 0 || extent % blockSize != 0) throw new ArgumentException($"{op}: {extent} {what} do not split into blocks of {blockSize}");
        int count = extent / blockSize;
        for (int j = 0; j < blocks.Length; j++)
        {
            if ((uint)blocks[j] >= (uint)count) throw new ArgumentOutOfRangeException(nameof(blocks), $"{op}: block {blocks[j]} is outside the {count} blocks of {what}");
            if (j > 0 && blocks[j] <= blocks[j - 1]) throw new ArgumentException($"{op}: blocks must be strictly increasing, got {blocks[j - 1]} then {blocks[j]}");
        }
    }
}

/// <summary>Shapes of one convolution call, checked once by <see cref="OpChecks.Conv2d"/>.</summary>
internal readonly struct ConvShape
{
    public readonly int N, H, W, Cx, XOff, KH, KW, Cin, Cout, SH, SW, PH, PW, OH, OW, Cy, YOff, K;
    public readonly long M;
    public readonly bool Relu, Direct;

    internal ConvShape(Tensor x, Tensor w, Conv2dParams p, Tensor y, int xOff, int yOff)
    {
        (N, H, W, Cx) = (x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3));
        (KH, KW, Cin, Cout) = (w.Dim(0), w.Dim(1), w.Dim(2), w.Dim(3));
        (SH, SW, PH, PW, Relu) = (p.StrideH, p.StrideW, p.PadH, p.PadW, p.Relu);
        OH = Conv2dParams.OutputSize(H, KH, SH, PH);
        OW = Conv2dParams.OutputSize(W, KW, SW, PW);
        Cy = y.Rank == 4 ? y.Dim(3) : 0;
        XOff = xOff;
        YOff = yOff;
        K = checked(KH * KW * Cin);
        M = (long)N * OH * OW;
        Direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;
    }
}

/// <summary>Geometry of one MaxPool2d / AvgPool2d call (<see cref="OpChecks.Pool2d"/>).</summary>
internal readonly record struct PoolShape(int N, int H, int W, int C, int K, int S, int P, int OH, int OW, int Cy, int YOff);

/// <summary>Sizes of one ScaledDotProductAttention call (<see cref="OpChecks.ScaledDotProductAttention"/>).</summary>
internal readonly record struct AttentionShape(int B, int N, int M, int C, int Cq, int Ckv, int BiasHeads, bool Empty);

/// <summary>Image (B, C, H, W) and token grid (B, Gh·Gw, F) of Patchify / Unpatchify, patch size P.</summary>
internal readonly record struct PatchShape(int B, int C, int H, int W, int P, int GH, int GW, int F);
