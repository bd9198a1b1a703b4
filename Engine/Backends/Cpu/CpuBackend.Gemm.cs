using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Engine.Backends.Cpu;

// Matrix products. OpenBLAS always runs single-threaded (set once at load): we split every product ourselves into
// tiles of C whose bounds are a function of (M, N, K) only, never of the thread count, and each tile is one
// single-threaded sgemm over the whole K. So a value of C is computed by the same kernel, over the same K order,
// whatever the number of threads, and the result bits do not depend on --threads (DESIGN.md: determinism).
public sealed unsafe partial class CpuBackend
{
    // C (M, N) = alpha · op(A) · op(B) + beta · C, row-major; A is (M, K) or, transposed, (K, M).
    public void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = OpChecks.Gemm(a, transposeA, b, transposeB, c);
        Sgemm(m, n, k, Pointer(a), transposeA ? m : k, transposeA, Pointer(b), transposeB ? k : n, transposeB,
            Pointer(c), n, alpha, beta);
    }

    public void BatchedGemm(int batch, int m, int n, int k,
        Tensor a, long strideA, bool transposeA,
        Tensor b, long strideB, bool transposeB,
        Tensor c, long strideC, float alpha = 1f, float beta = 0f)
    {
        OpChecks.BatchedGemm(batch, m, n, k, a, strideA, b, strideB, c, strideC);
        if (batch == 0 || m == 0 || n == 0) return;
        float* pa = Pointer(a), pb = Pointer(b), pc = Pointer(c);
        var tiles = GemmTiles.Of(m, n, k);
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        // every (product, tile) pair is one task; the tiles of a product are the same as for a lone Gemm
        Parallel.For(0L, (long)batch * tiles.Count, Options((long)batch * m * n * Math.Max(1, k)), task =>
        {
            long i = task / tiles.Count;
            tiles.Run((int)(task % tiles.Count), m, n, k, pa + i * strideA, lda, transposeA, pb + i * strideB, ldb, transposeB,
                pc + i * strideC, n, alpha, beta);
        });
    }

    /// <summary>
    /// Row-major C (M, N) = alpha · op(A) · op(B) + beta · C with leading dimensions, split into <see cref="GemmTiles"/>
    /// over this backend's threads.
    /// </summary>
    internal void Sgemm(int m, int n, int k, float* a, int lda, bool transposeA, float* b, int ldb, bool transposeB,
        float* c, int ldc, float alpha, float beta)
    {
        if (m == 0 || n == 0) return;
        var tiles = GemmTiles.Of(m, n, k);
        if (tiles.Count == 1)
        {
            GemmTiles.Call(m, n, k, a, lda, transposeA, b, ldb, transposeB, c, ldc, alpha, beta);
            return;
        }
        Parallel.For(0, tiles.Count, new ParallelOptions { MaxDegreeOfParallelism = Threads },
            t => tiles.Run(t, m, n, k, a, lda, transposeA, b, ldb, transposeB, c, ldc, alpha, beta));
    }
}

/// <summary>
/// How a product of C (M, N) over K is cut into tiles: <see cref="RowTile"/> rows by <see cref="ColumnTile"/> columns,
/// chosen from the shape alone. Small products are one tile; larger ones get a power of two of tiles, up to
/// <see cref="MaxTiles"/> and one per <see cref="SingleCallWork"/> multiply-adds, of at least <see cref="MinRows"/> rows and
/// <see cref="MinColumns"/> columns (column tiles in multiples of 16 floats, one AVX-512 register). Each tile's call packs
/// its rows of A and its columns of B again, so of the ways to make that many tiles the one that copies the least,
/// rowTiles·N + columnTiles·M, is taken: a wide product (DiT's 512 × 3456) is cut into column tiles, a tall one into rows.
/// </summary>
internal readonly record struct GemmTiles(int RowTile, int ColumnTile, int RowTiles, int ColumnTiles)
{
    /// <summary>Enough tiles to feed 16 threads; a constant, so the cut is the same on every machine.</summary>
    public const int MaxTiles = 16;
    public const int MinRows = 64;
    public const int MinColumns = 64;
    /// <summary>Below this many multiply-adds a product is one call: splitting costs more than it gains.</summary>
    public const long SingleCallWork = 1L << 21;

    public static GemmTiles Of(int m, int n, int k)
    {
        long work = (long)m * n * Math.Max(1, k);
        int tiles = 1;
        while (tiles < MaxTiles && work >= 2L * tiles * SingleCallWork) tiles *= 2;
        for (; tiles > 1; tiles /= 2)
        {
            int bestRows = 0;
            long bestCost = long.MaxValue;
            for (int rows = 1; rows <= tiles; rows *= 2)
            {
                int columns = tiles / rows;
                if ((rows > 1 && m / rows < MinRows) || (columns > 1 && n / columns < MinColumns)) continue;
                long cost = (long)rows * n + (long)columns * m;
                if (cost < bestCost) (bestRows, bestCost) = (rows, cost);
            }
            if (bestRows > 0) return Make(m, n, bestRows, tiles / bestRows);
        }
        return new GemmTiles(m, n, 1, 1);
    }

    private static GemmTiles Make(int m, int n, int rowTiles, int columnTiles)
    {
        int rowTile = (m + rowTiles - 1) / rowTiles;
        int columnTile = (n + columnTiles - 1) / columnTiles;
        columnTile = Math.Min(n, (columnTile + 15) / 16 * 16);
        return new GemmTiles(rowTile, columnTile, (m + rowTile - 1) / rowTile, (n + columnTile - 1) / columnTile);
    }

    public int Count => RowTiles * ColumnTiles;

    /// <summary>First row and column, and size, of tile <paramref name="index"/> (row-tile major) of C (M, N).</summary>
    public (int Row, int Column, int Rows, int Columns) Bounds(int index, int m, int n)
    {
        int r0 = index / ColumnTiles * RowTile, c0 = index % ColumnTiles * ColumnTile;
        return (r0, c0, Math.Min(RowTile, m - r0), Math.Min(ColumnTile, n - c0));
    }

    /// <summary>Computes tile <paramref name="index"/> (row-tile major) of the product.</summary>
    public unsafe void Run(int index, int m, int n, int k, float* a, int lda, bool transposeA, float* b, int ldb, bool transposeB,
        float* c, int ldc, float alpha, float beta)
    {
        var (r0, c0, rows, cols) = Bounds(index, m, n);
        // rows r0.. of op(A): A's rows (no transpose) or A's columns (transposed); columns c0.. of op(B) likewise
        float* at = transposeA ? a + r0 : a + (long)r0 * lda;
        float* bt = transposeB ? b + (long)c0 * ldb : b + c0;
        Call(rows, cols, k, at, lda, transposeA, bt, ldb, transposeB, c + (long)r0 * ldc + c0, ldc, alpha, beta);
    }

    /// <summary>One single-threaded row-major sgemm.</summary>
    public static unsafe void Call(int m, int n, int k, float* a, int lda, bool transposeA, float* b, int ldb, bool transposeB,
        float* c, int ldc, float alpha, float beta)
    {
        if (m == 0 || n == 0) return;
        OpenBlas.Sgemm(OpenBlas.RowMajor, transposeA ? OpenBlas.Trans : OpenBlas.NoTrans, transposeB ? OpenBlas.Trans : OpenBlas.NoTrans,
            m, n, k, alpha, a, Math.Max(1, lda), b, Math.Max(1, ldb), beta, c, Math.Max(1, ldc));
    }
}
