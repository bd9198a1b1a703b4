namespace DyDiT.Eval.Evaluation.Metrics;

/// <summary>
/// What a pass over distance blocks does with the distances. Fast rows come with bounds [lo, hi] per column and
/// may ask the tile for exact values; exact rows come with every distance of the row and go into per-block state
/// that is committed only if the block is kept (an fp16 block that overflows is redone in float32).
/// Rows of one tile are handed out in parallel.
/// </summary>
internal abstract class DistanceConsumer
{
    public abstract void FastRow(TileView tile, int r, ReadOnlySpan<float> lo, ReadOnlySpan<float> hi);

    public abstract void BeginExactBlock((int Start, int Count) rows, (int Start, int Count) cols);

    public abstract void ExactRow(TileView tile, int r, ReadOnlySpan<float> distances);

    public abstract void CommitExactBlock();
}

/// <summary>A running top-4 (smallest squared distances) per row; the 4th is ADM's k = 3 radius.</summary>
internal sealed class RadiiConsumer : DistanceConsumer
{
    private const int K = PrecisionRecall.Neighbourhood + 1;
    private readonly float[] _top;              // (rows, 4) ascending, +inf where empty
    private float[] _blockTop = [];             // (block rows, 4) for an exact block
    private int _blockRowStart, _blockRows;

    public RadiiConsumer(int count)
    {
        _top = new float[count * K];
        Array.Fill(_top, float.PositiveInfinity);
    }

    public float[] Radii()
    {
        var radii = new float[_top.Length / K];
        for (int i = 0; i < radii.Length; i++) radii[i] = _top[i * K + K - 1];
        return radii;
    }

    public override void FastRow(TileView tile, int r, ReadOnlySpan<float> lo, ReadOnlySpan<float> hi)
    {
        var top = _top.AsSpan((tile.RowStart + r) * K, K);
        // Threshold: no column whose lower bound exceeds it can be among the row's 4 smallest — either it is above the
        // current 4th smallest, or 4 columns of this tile are certainly at or below it.
        float threshold = top[K - 1];
        if (float.IsPositiveInfinity(threshold) && hi.Length >= K)
            threshold = Math.Max(KthSmallest(hi), 0f);
        for (int j = 0; j < lo.Length; j++)
        {
            if (lo[j] > threshold) continue;
            float d = tile.Exact(r, j);
            if (d < top[K - 1]) Insert(top, d);
            threshold = Math.Min(threshold, top[K - 1]);
        }
    }

    public override void BeginExactBlock((int Start, int Count) rows, (int Start, int Count) cols)
    {
        (_blockRowStart, _blockRows) = (rows.Start, rows.Count);
        if (_blockTop.Length < rows.Count * K) _blockTop = new float[rows.Count * K];
        Array.Fill(_blockTop, float.PositiveInfinity);
    }

    public override void ExactRow(TileView tile, int r, ReadOnlySpan<float> distances)
    {
        var top = _blockTop.AsSpan((tile.RowStart + r - _blockRowStart) * K, K);
        foreach (float d in distances)
            if (d < top[K - 1]) Insert(top, d);
    }

    public override void CommitExactBlock()
    {
        for (int i = 0; i < _blockRows; i++)
        {
            var top = _top.AsSpan((_blockRowStart + i) * K, K);
            for (int k = 0; k < K; k++)
            {
                float d = _blockTop[i * K + k];
                if (d < top[K - 1]) Insert(top, d);
            }
        }
    }

    // top: ascending, d < top[^1]
    private static void Insert(Span<float> top, float d)
    {
        int i = top.Length - 1;
        while (i > 0 && top[i - 1] > d)
        {
            top[i] = top[i - 1];
            i--;
        }
        top[i] = d;
    }

    private static float KthSmallest(ReadOnlySpan<float> values)
    {
        Span<float> top = stackalloc float[K];
        top.Fill(float.PositiveInfinity);
        foreach (float v in values)
            if (v < top[K - 1]) Insert(top, v);
        return top[K - 1];
    }
}

/// <summary>
/// ADM's <c>less_thans</c>: rows are references, columns samples. A reference is inside when some sample's ball holds
/// it (d ≤ sample radius); a sample is inside when some reference's ball holds it (d ≤ reference radius).
/// </summary>
internal sealed class MembershipConsumer(float[] radiiRef, float[] radiiSample) : DistanceConsumer
{
    private bool[] _blockRef = [], _blockSample = [];
    private int _blockRowStart, _blockColStart, _blockRows, _blockCols;

    public bool[] RefInside { get; } = new bool[radiiRef.Length];
    public bool[] SampleInside { get; } = new bool[radiiSample.Length];

    public override void FastRow(TileView tile, int r, ReadOnlySpan<float> lo, ReadOnlySpan<float> hi)
    {
        int gi = tile.RowStart + r;
        float radiusRef = radiiRef[gi];
        bool refInside = RefInside[gi];
        for (int j = 0; j < lo.Length; j++)
        {
            int gj = tile.ColStart + j;
            bool sampleInside = SampleInside[gj];
            if (refInside && sampleInside) continue;
            float d = float.NaN;
            if (!refInside)
            {
                float radius = radiiSample[gj];
                if (hi[j] <= radius) refInside = true;
                else if (lo[j] <= radius)
                {
                    d = tile.Exact(r, j);
                    refInside = d <= radius;
                }
            }
            if (!sampleInside)
            {
                if (hi[j] <= radiusRef) SampleInside[gj] = true;
                else if (lo[j] <= radiusRef)
                {
                    if (float.IsNaN(d)) d = tile.Exact(r, j);
                    if (d <= radiusRef) SampleInside[gj] = true;
                }
            }
        }
        if (refInside) RefInside[gi] = true;
    }

    public override void BeginExactBlock((int Start, int Count) rows, (int Start, int Count) cols)
    {
        (_blockRowStart, _blockRows, _blockColStart, _blockCols) = (rows.Start, rows.Count, cols.Start, cols.Count);
        _blockRef = new bool[rows.Count];
        _blockSample = new bool[cols.Count];
    }

    public override void ExactRow(TileView tile, int r, ReadOnlySpan<float> distances)
    {
        int gi = tile.RowStart + r;
        float radiusRef = radiiRef[gi];
        bool refInside = false;
        for (int j = 0; j < distances.Length; j++)
        {
            int gj = tile.ColStart + j;
            float d = distances[j];
            if (d <= radiiSample[gj]) refInside = true;
            if (d <= radiusRef) _blockSample[gj - _blockColStart] = true;
        }
        if (refInside) _blockRef[gi - _blockRowStart] = true;
    }

    public override void CommitExactBlock()
    {
        for (int i = 0; i < _blockRows; i++)
            if (_blockRef[i]) RefInside[_blockRowStart + i] = true;
        for (int j = 0; j < _blockCols; j++)
            if (_blockSample[j]) SampleInside[_blockColStart + j] = true;
    }
}
