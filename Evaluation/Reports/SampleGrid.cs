using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;

namespace DyDiT.Eval.Evaluation.Reports;

/// <summary>
/// The report's sample grid: the first K images of each run, one row per run in report order, so a column shows the
/// same sample index (same seed and label) across models. Cells are the largest run's image size; a smaller run's
/// images are scaled up to it by nearest neighbour (pixel replication, no invented detail), so rows line up and each
/// column stays one comparison. Cells are separated by <see cref="Padding"/> black pixels, as <c>sample.py</c>'s
/// <c>save_image</c> grid; a run with fewer than K samples leaves its remaining cells black. Only the first K rows
/// of each <c>arr_0</c> are read. (<c>Workers.Sampling.SampleImages.PreviewGrid</c> builds sample.py's grid from
/// float CHW decoder output, and Evaluation may not depend on Workers, so this grid works on ADM's uint8 HWC rows.)
/// </summary>
internal static class SampleGrid
{
    public const int Padding = 2;

    /// <summary>The grid's RGB bytes and size.</summary>
    internal sealed record Image(byte[] Rgb, int Width, int Height, int CellWidth, int CellHeight);

    /// <summary>One run's first images: (count, height, width, 3) bytes, and how many the batch holds in all.</summary>
    internal sealed record Samples(byte[] Rgb, int Count, int Height, int Width, long Total);

    /// <summary>Reads up to <paramref name="count"/> images from <c>arr_0</c> of an ADM sample batch, checking its layout.</summary>
    public static Samples Read(string npzPath, int count)
    {
        using var npz = NpzArchive.Open(npzPath);
        var images = npz["arr_0"];
        var shape = images.Shape;
        if (images.DType != DType.UInt8 || shape.Count != 4 || shape[3] != 3 || shape[1] <= 0 || shape[2] <= 0)
            throw new TensorFileException(npzPath,
                $"arr_0 is {images.DType.NumpyName()} ({string.Join(", ", shape)}); a sample batch is uint8 [N, H, W, 3] (ADM's layout)");
        int height = checked((int)shape[1]), width = checked((int)shape[2]);
        int n = (int)Math.Min(count, shape[0]);
        var rgb = new byte[checked(n * height * width * 3)];
        if (n > 0)
        {
            using var rows = images.OpenRows();
            rows.ReadRows(rgb, n);
        }
        return new Samples(rgb, n, height, width, shape[0]);
    }

    /// <summary>Lays out <paramref name="runs"/> (one row each) with <paramref name="columns"/> cells per row.</summary>
    public static Image Compose(IReadOnlyList<Samples> runs, int columns)
    {
        if (runs.Count == 0 || columns <= 0) throw new ArgumentException($"a grid needs runs and columns (got {runs.Count} runs, {columns} columns)");
        int cellH = runs.Max(r => r.Height), cellW = runs.Max(r => r.Width);
        int width = checked(columns * (cellW + Padding) + Padding), height = checked(runs.Count * (cellH + Padding) + Padding);
        var grid = new byte[checked(width * height * 3)]; // black padding and empty cells
        for (int r = 0; r < runs.Count; r++)
        {
            var run = runs[r];
            int imageBytes = run.Height * run.Width * 3;
            for (int k = 0; k < Math.Min(columns, run.Count); k++)
            {
                int top = Padding + r * (cellH + Padding), left = Padding + k * (cellW + Padding);
                Blit(run.Rgb.AsSpan(k * imageBytes, imageBytes), run.Height, run.Width, grid, width, top, left, cellH, cellW);
            }
        }
        return new Image(grid, width, height, cellW, cellH);
    }

    /// <summary>Copies an image into a cell of the grid, scaling by nearest neighbour when the cell is larger.</summary>
    private static void Blit(ReadOnlySpan<byte> image, int h, int w, Span<byte> grid, int gridWidth, int top, int left, int cellH, int cellW)
    {
        for (int y = 0; y < cellH; y++)
        {
            int sy = (int)((long)y * h / cellH);
            var source = image.Slice(sy * w * 3, w * 3);
            var target = grid.Slice(((top + y) * gridWidth + left) * 3, cellW * 3);
            if (w == cellW)
            {
                source.CopyTo(target);
                continue;
            }
            for (int x = 0; x < cellW; x++)
            {
                int sx = (int)((long)x * w / cellW);
                source.Slice(sx * 3, 3).CopyTo(target.Slice(x * 3, 3));
            }
        }
    }
}
