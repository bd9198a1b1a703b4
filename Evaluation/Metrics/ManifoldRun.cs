using DyDiT.Eval.Engine.LinearAlgebra;
using System.Runtime.Intrinsics;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>
/// Walks ADM's 10000×10000 distance blocks for the radii and the membership tests. Each block is either
///   fast  — it cannot overflow P (a priori, from row lengths): one float32 GEMM per tile gives estimates with a
///           rigorous error bound; consumers recompute exactly only the pairs whose bound straddles a decision; or
///   exact — every distance is evaluated in P from a float64 GEMM; if P = fp16 and any entry overflows, the block is
///           discarded and redone in float32, exactly as ADM's graph falls back.
/// </summary>
internal sealed class ManifoldRun : IDisposable
{
    /// <summary>Largest tile edge: a 2048×2048 float32 GEMM output is 16 MB and runs near OpenBLAS's peak.</summary>
    public const int DefaultTile = 2048;

    private readonly int _maxTile;

    private readonly IBackend _backend;
    private readonly DistanceMode _mode;
    private readonly int _blockSize;
    private readonly IProgress<PrecisionRecallProgress>? _progress;
    private readonly long _totalPairs;
    private readonly bool _exactOnly;
    private readonly List<DistanceBlockInfo> _blocks = [];
    private long _donePairs, _exactPairs;
    private string _phase = "";
    private Tensor? _aTile, _bTile, _sTile;

    public ManifoldRun(IBackend backend, DistanceMode mode, int blockSize, IProgress<PrecisionRecallProgress>? progress, bool exactOnly, long totalPairs, int tile = DefaultTile)
    {
        _maxTile = tile;
        _exactOnly = exactOnly;
        _backend = backend;
        _mode = mode;
        _blockSize = blockSize;
        _progress = progress;
        _totalPairs = totalPairs;
    }

    public IReadOnlyList<DistanceBlockInfo> Blocks => _blocks;

    /// <summary>Pairs whose distance was evaluated exactly (all pairs of exact blocks, straddling pairs of fast ones).</summary>
    public long ExactPairs => Interlocked.Read(ref _exactPairs);

    /// <summary>ADM's <c>manifold_radii</c>: the 4th smallest distance of every row to its own set.</summary>
    public float[] Radii(FeatureSet set, string call)
    {
        _phase = call;
        var consumer = new RadiiConsumer(set.Count);
        var blocks = BlockRanges(set.Count).ToArray();
        // Distances within one set: the float32 estimate of u·v serves (i, j) and (j, i) alike, so each pair of mirror
        // blocks (and each pair of mirror tiles in a diagonal block) shares one GEMM; ADM's rounding order, which is not
        // symmetric, is applied per orientation by the exact recomputation.
        var infos = new DistanceBlockInfo?[blocks.Length, blocks.Length];
        for (int bi = 0; bi < blocks.Length; bi++)
            for (int bj = 0; bj < blocks.Length; bj++)
            {
                if (infos[bi, bj] != null) continue;
                var info = ProcessBlock(set, blocks[bi], set, blocks[bj], consumer, call, mirror: bi <= bj, out bool mirrored);
                infos[bi, bj] = info;
                if (mirrored) infos[bj, bi] = info with { Rows = info.Cols, Cols = info.Rows };
            }
        foreach (var info in infos) _blocks.Add(info!);
        return consumer.Radii();
    }

    /// <summary>ADM's <c>evaluate_pr</c>: which references lie in some sample ball, which samples in some reference ball.</summary>
    public (bool[] RefInside, bool[] SampleInside) Membership(FeatureSet reference, float[] radiiRef, FeatureSet sample, float[] radiiSample)
    {
        _phase = "evaluate_pr";
        var consumer = new MembershipConsumer(radiiRef, radiiSample);
        foreach (var rows in BlockRanges(reference.Count))
            foreach (var cols in BlockRanges(sample.Count))
                _blocks.Add(ProcessBlock(reference, rows, sample, cols, consumer, "evaluate_pr", mirror: false, out _));
        return (consumer.RefInside, consumer.SampleInside);
    }

    private IEnumerable<(int Start, int Count)> BlockRanges(int n)
    {
        for (int start = 0; start < n; start += _blockSize) yield return (start, Math.Min(_blockSize, n - start));
    }

    private IEnumerable<(int Start, int Count)> TileRanges((int Start, int Count) block)
    {
        int tiles = (block.Count + _maxTile - 1) / _maxTile;
        int size = (block.Count + tiles - 1) / tiles;
        for (int s = 0; s < block.Count; s += size) yield return (block.Start + s, Math.Min(size, block.Count - s));
    }

    /// <summary>
    /// One ADM block. With <paramref name="mirror"/> (a = b), a fast block also covers its mirror block (cols × rows)
    /// and says so through <paramref name="mirrored"/>; both then have the same precision (the overflow test is symmetric).
    /// </summary>
    private DistanceBlockInfo ProcessBlock(FeatureSet a, (int Start, int Count) rows, FeatureSet b, (int Start, int Count) cols,
        DistanceConsumer consumer, string call, bool mirror, out bool mirrored)
    {
        long before = _donePairs;
        mirrored = false;
        var first = _mode == DistanceMode.Fp16 ? DistancePrecision.Fp16 : DistancePrecision.Float32;
        var outcome = _mode == DistanceMode.Fp16 ? BlockPrecision.Fp16 : BlockPrecision.Float32;
        if (CannotOverflow(first, a, rows, b, cols))
        {
            Fast(first, a, rows, b, cols, consumer, mirror);
            mirrored = mirror;
        }
        else if (!ExactBlock(first, a, rows, b, cols, consumer, stopOnOverflow: first == DistancePrecision.Fp16))
        {
            outcome = BlockPrecision.Float32Fallback;
            _donePairs = before;
            if (CannotOverflow(DistancePrecision.Float32, a, rows, b, cols))
                Fast(DistancePrecision.Float32, a, rows, b, cols, consumer, mirror: false);
            else
                ExactBlock(DistancePrecision.Float32, a, rows, b, cols, consumer, stopOnOverflow: false);
        }
        _donePairs = before + (long)rows.Count * cols.Count * (mirrored && rows != cols ? 2 : 1);
        Report();
        return new DistanceBlockInfo(call, rows.Count, cols.Count, outcome);
    }

    private void Report() => _progress?.Report(new PrecisionRecallProgress(_phase, _donePairs, _totalPairs));

    /// <summary>
    /// True when no entry of the block can overflow P: |2m|, |‖u‖² − 2m| and the distance are all at most
    /// (‖u‖ + ‖v‖)² (Cauchy–Schwarz), plus roundings.
    /// </summary>
    private bool CannotOverflow(DistancePrecision p, FeatureSet a, (int Start, int Count) rows, FeatureSet b, (int Start, int Count) cols)
    {
        if (_exactOnly) return false;
        var (normsA, lengthsA) = a.For(p);
        var (normsB, lengthsB) = b.For(p);
        float maxA = 0, maxB = 0;
        for (int i = rows.Start; i < rows.Start + rows.Count; i++)
        {
            if (!float.IsFinite(normsA[i]) || !float.IsFinite(lengthsA[i])) return false;
            maxA = Math.Max(maxA, lengthsA[i]);
        }
        for (int j = cols.Start; j < cols.Start + cols.Count; j++)
        {
            if (!float.IsFinite(normsB[j]) || !float.IsFinite(lengthsB[j])) return false;
            maxB = Math.Max(maxB, lengthsB[j]);
        }
        double bound = ((double)maxA + maxB) * ((double)maxA + maxB) * 1.01;
        return bound < (p == DistancePrecision.Fp16 ? 64000.0 : 1e37);
    }

    // ---------------------------------------------------------------- fast blocks

    private void Fast(DistancePrecision p, FeatureSet a, (int Start, int Count) rows, FeatureSet b, (int Start, int Count) cols,
        DistanceConsumer consumer, bool mirror)
    {
        bool diagonal = mirror && rows == cols;
        int dim = a.Dim;
        EnsureTiles(dim);
        var (normsA, lengthsA) = a.For(p);
        var (normsB, lengthsB) = b.For(p);
        var aHost = new float[_maxTile * dim];
        var bHost = new float[_maxTile * dim];
        var sHost = new float[_maxTile * _maxTile];
        var tHost = mirror ? new float[_maxTile * _maxTile] : [];
        var half = new Half[Math.Min(_maxTile * dim, 1 << 16)];
        double unit = DistanceArithmetic.UnitRoundoff(p);
        // |sgemm − exact dot| ≤ γ_K · Σ|u_k v_k| ≤ γ_K · ‖u‖‖v‖, γ_K = K·2^-24 / (1 − K·2^-24), any summation order.
        double gammaK = dim * Math.ScaleB(1.0, -24) / (1 - dim * Math.ScaleB(1.0, -24));
        var bounds = new BoundConstants((float)(gammaK * 1.0001), (float)unit);

        foreach (var rt in TileRanges(rows))
        {
            DistanceArithmetic.RoundFeatures(p, a.Data.Span.Slice(rt.Start * dim, rt.Count * dim), aHost.AsSpan(0, rt.Count * dim), half);
            _backend.Upload(aHost, _aTile!);
            foreach (var ct in TileRanges(cols))
            {
                if (diagonal && ct.Start < rt.Start) continue; // covered as the mirror of (ct, rt)
                DistanceArithmetic.RoundFeatures(p, b.Data.Span.Slice(ct.Start * dim, ct.Count * dim), bHost.AsSpan(0, ct.Count * dim), half);
                _backend.Upload(bHost, _bTile!);
                // s (rt.Count, ct.Count) = A_tile (rt.Count, dim) · B_tile (ct.Count, dim)ᵀ
                _backend.BatchedGemm(1, rt.Count, ct.Count, dim, _aTile!, 0, false, _bTile!, 0, true, _sTile!, 0);
                _backend.Download(_sTile!, sHost);

                var tile = new TileView(p, dim, rt.Start, rt.Count, ct.Start, ct.Count, aHost, bHost, normsA, normsB, this);
                ScanTile(tile, sHost, bounds, lengthsA, lengthsB, consumer);
                _donePairs += (long)rt.Count * ct.Count;
                if (mirror && !(diagonal && ct.Start == rt.Start))
                {
                    // The mirror tile: rows ct, columns rt, estimates sᵀ (the exact dot product is symmetric).
                    Transpose(sHost, rt.Count, ct.Count, tHost);
                    var mirrorTile = new TileView(p, dim, ct.Start, ct.Count, rt.Start, rt.Count, bHost, aHost, normsB, normsA, this);
                    ScanTile(mirrorTile, tHost, bounds, lengthsB, lengthsA, consumer);
                    _donePairs += (long)rt.Count * ct.Count;
                }
                Report();
            }
        }
    }

    /// <summary>Bounds every row of <paramref name="tile"/> from its estimates s (rows, cols) and hands it to the consumer.</summary>
    private static void ScanTile(TileView tile, float[] s, BoundConstants bounds, float[] lengthsRows, float[] lengthsCols, DistanceConsumer consumer)
    {
        int cols = tile.Cols;
        Parallel.For(0, tile.Rows, () => (new float[cols], new float[cols]), (r, _, buf) =>
        {
            int gi = tile.RowStart + r;
            EstimateRow(bounds, tile.NormsRows[gi], lengthsRows[gi], s.AsSpan(r * cols, cols),
                tile.NormsCols.AsSpan(tile.ColStart, cols), lengthsCols.AsSpan(tile.ColStart, cols), buf.Item1, buf.Item2);
            consumer.FastRow(tile, r, buf.Item1, buf.Item2);
            return buf;
        }, _ => { });
    }

    // t (cols, rows) = sᵀ for s (rows, cols), in 64×64 blocks
    private static void Transpose(float[] s, int rows, int cols, float[] t)
    {
        const int B = 64;
        Parallel.For(0, (rows + B - 1) / B, bi =>
        {
            int r0 = bi * B, r1 = Math.Min(rows, r0 + B);
            for (int c0 = 0; c0 < cols; c0 += B)
            {
                int c1 = Math.Min(cols, c0 + B);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++)
                        t[c * rows + r] = s[r * cols + c];
            }
        });
    }

    private readonly record struct BoundConstants(float Gamma, float Unit);

    /// <summary>
    /// Bounds [lo, hi] on ADM's value of (‖u‖² − 2m) + ‖v‖² for one row, from the float32 estimate s of m.
    /// With exact m*, |s − m*| ≤ E = γ‖u‖‖v‖; the three roundings of the graph move the result by at most
    /// u·(2|m| + |‖u‖² − 2m| + |d|) ≤ u(1+u)²(2|s| + 2|c| + ‖v‖²) + O(uE); evaluating c here adds ≤ 2^-23(‖u‖²+‖v‖²+2|s|).
    /// A 1% margin and 2^-20 absolute (fp16 subnormal roundings) make it safe. max(·, 0) is monotone, so the bounds hold
    /// for the final distance too.
    /// </summary>
    // s, normV, lengthV, lo, hi: (cols)
    private static void EstimateRow(BoundConstants k, float normU, float lengthU, ReadOnlySpan<float> s,
        ReadOnlySpan<float> normV, ReadOnlySpan<float> lengthV, Span<float> lo, Span<float> hi)
    {
        float g = k.Gamma * lengthU;
        float u1 = k.Unit * (1 + k.Unit) * (1 + k.Unit);
        float twoEFactor = 2 * (1 + k.Unit);
        const float w = 1f / (1 << 22), margin = 1.01f, tiny = 1f / (1 << 20);
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vnu = Vector512.Create(normU);
            var vg = Vector512.Create(g);
            var vu1 = Vector512.Create(u1);
            var v2e = Vector512.Create(twoEFactor);
            var vw = Vector512.Create(w);
            var vm = Vector512.Create(margin);
            var vt = Vector512.Create(tiny);
            var two = Vector512.Create(2f);
            for (; j + 16 <= s.Length; j += 16)
            {
                var vs = Vector512.Create(s.Slice(j, 16));
                var vnv = Vector512.Create(normV.Slice(j, 16));
                var vlv = Vector512.Create(lengthV.Slice(j, 16));
                var abs2s = two * Vector512.Abs(vs);
                var c = (vnu + vnv) - two * vs;
                var e = vg * vlv;
                var delta = vm * (v2e * e + vw * (vnu + vnv + abs2s) + vu1 * (abs2s + two * Vector512.Abs(c) + vnv)) + vt;
                (c - delta).CopyTo(lo.Slice(j, 16));
                (c + delta).CopyTo(hi.Slice(j, 16));
            }
        }
        for (; j < s.Length; j++)
        {
            float abs2s = 2 * Math.Abs(s[j]);
            float c = (normU + normV[j]) - 2 * s[j];
            float e = g * lengthV[j];
            float delta = margin * (twoEFactor * e + w * (normU + normV[j] + abs2s) + u1 * (abs2s + 2 * Math.Abs(c) + normV[j])) + tiny;
            lo[j] = c - delta;
            hi[j] = c + delta;
        }
    }

    // ---------------------------------------------------------------- exact blocks

    /// <summary>Evaluates every entry in P; returns false (block abandoned) at the first overflow when asked to stop.</summary>
    private bool ExactBlock(DistancePrecision p, FeatureSet a, (int Start, int Count) rows, FeatureSet b, (int Start, int Count) cols,
        DistanceConsumer consumer, bool stopOnOverflow)
    {
        int dim = a.Dim;
        var (normsA, _) = a.For(p);
        var (normsB, _) = b.For(p);
        var aHost = new float[_maxTile * dim];
        var bHost = new float[_maxTile * dim];
        var aWide = new double[_maxTile * dim];
        var bWide = new double[_maxTile * dim];
        var dots = new double[_maxTile * _maxTile];
        var half = new Half[Math.Min(_maxTile * dim, 1 << 16)];
        consumer.BeginExactBlock(rows, cols);
        foreach (var rt in TileRanges(rows))
        {
            DistanceArithmetic.RoundFeatures(p, a.Data.Span.Slice(rt.Start * dim, rt.Count * dim), aHost.AsSpan(0, rt.Count * dim), half);
            for (int i = 0; i < rt.Count * dim; i++) aWide[i] = aHost[i];
            foreach (var ct in TileRanges(cols))
            {
                DistanceArithmetic.RoundFeatures(p, b.Data.Span.Slice(ct.Start * dim, ct.Count * dim), bHost.AsSpan(0, ct.Count * dim), half);
                for (int i = 0; i < ct.Count * dim; i++) bWide[i] = bHost[i];
                // dots (rt.Count, ct.Count) = A (rt.Count, dim) · B (ct.Count, dim)ᵀ in float64: exact products of P values
                HostLinearAlgebra.GemmF64(aWide.AsSpan(0, rt.Count * dim), false, bWide.AsSpan(0, ct.Count * dim), true,
                    dots.AsSpan(0, rt.Count * ct.Count), rt.Count, ct.Count, dim);
                var tile = new TileView(p, dim, rt.Start, rt.Count, ct.Start, ct.Count, aHost, bHost, normsA, normsB, this);
                int overflowed = 0;
                Parallel.For(0, rt.Count, () => new float[ct.Count], (r, _, d) =>
                {
                    float nu = normsA[rt.Start + r];
                    for (int j = 0; j < ct.Count; j++)
                    {
                        d[j] = DistanceArithmetic.Distance(p, nu, normsB[ct.Start + j], dots[r * ct.Count + j]);
                        if (float.IsPositiveInfinity(d[j])) overflowed = 1;
                    }
                    consumer.ExactRow(tile, r, d);
                    return d;
                }, _ => { });
                Interlocked.Add(ref _exactPairs, (long)rt.Count * ct.Count);
                if (overflowed != 0 && stopOnOverflow) return false;
                _donePairs += (long)rt.Count * ct.Count;
                Report();
            }
        }
        consumer.CommitExactBlock();
        return true;
    }

    private void EnsureTiles(int dim)
    {
        if (_aTile != null && _aTile.Dim(1) == dim) return;
        DisposeTiles();
        _aTile = _backend.Zeros(_maxTile, dim);
        _bTile = _backend.Zeros(_maxTile, dim);
        _sTile = _backend.Zeros(_maxTile, _maxTile);
    }

    private void DisposeTiles()
    {
        _aTile?.Dispose();
        _bTile?.Dispose();
        _sTile?.Dispose();
        _aTile = _bTile = _sTile = null;
    }

    public void Dispose() => DisposeTiles();

    internal void CountExact() => Interlocked.Increment(ref _exactPairs);
}

/// <summary>One tile of a block: the rounded rows of both sides, for exact evaluation of single pairs.</summary>
internal sealed class TileView(DistancePrecision precision, int dim, int rowStart, int rows, int colStart, int cols,
    float[] aRounded, float[] bRounded, float[] normsA, float[] normsB, ManifoldRun run)
{
    public int RowStart { get; } = rowStart;
    public int Rows { get; } = rows;
    public int ColStart { get; } = colStart;
    public int Cols { get; } = cols;

    /// <summary>ADM's ‖u‖² of every row of the row set / column set, in the tile's precision.</summary>
    public float[] NormsRows { get; } = normsA;

    public float[] NormsCols { get; } = normsB;

    /// <summary>ADM's distance between tile row r and tile column c, evaluated exactly in the tile's precision.</summary>
    public float Exact(int r, int c)
    {
        run.CountExact();
        double dot = DistanceArithmetic.Dot(aRounded.AsSpan(r * dim, dim), bRounded.AsSpan(c * dim, dim));
        return DistanceArithmetic.Distance(precision, NormsRows[RowStart + r], NormsCols[ColStart + c], dot);
    }
}
