using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Vae;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>Final latents → the bytes of an ADM sample batch, as sample_ddp.py makes them.</summary>
public static class SampleImages
{
    /// <summary>
    /// Decodes <paramref name="count"/> latents (count, C, h, w) in DiT space: <c>vae.decode(z / 0.18215)</c>, then
    /// <c>clamp(127.5·x + 128, 0, 255)</c> cast to uint8, NHWC — (count, H, W, 3) bytes. With
    /// <paramref name="batchInvariant"/> each sample is decoded on its own, so its bytes do not depend on the batch
    /// (the convolutions' GEMM results depend on the product's shape, see <see cref="SamplerSettings.BatchInvariant"/>).
    /// </summary>
    public static byte[] Decode(VaeDecoder vae, IBackend backend, ReadOnlySpan<float> latents, int count, int channels, int size, bool batchInvariant)
    {
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentNullException.ThrowIfNull(backend);
        int row = channels * size * size;
        if (count <= 0 || latents.Length != count * row)
            throw new ArgumentException($"{latents.Length} latent values are not {count} latents of ({channels}, {size}, {size})");
        int chunk = batchInvariant ? 1 : count;
        int factor = vae.Config.UpsampleFactor, imageChannels = vae.Config.OutChannels;
        int imageBytes = size * factor * size * factor * imageChannels;
        var result = new byte[checked(count * imageBytes)];
        var scaled = new float[chunk * row];
        for (int start = 0; start < count; start += chunk)
        {
            int n = Math.Min(chunk, count - start);
            var source = latents.Slice(start * row, n * row);
            for (int i = 0; i < source.Length; i++) scaled[i] = source[i] / VaeDecoder.LatentScale;
            using var input = backend.FromHost(scaled.AsSpan(0, n * row), n, channels, size, size);
            using var images = vae.Decode(input);
            if (images.Length != (long)n * imageBytes)
                throw new InvalidOperationException($"the VAE returned {images} for {n} latents of ({channels}, {size}, {size})");
            VaeDecoder.ToUint8Hwc(images.ToArray(), n, images.Dim(1), images.Dim(2), images.Dim(3), result.AsSpan(start * imageBytes, n * imageBytes));
        }
        return result;
    }

    /// <summary>
    /// The preview grid <c>sample.py</c> saves: torchvision's <c>save_image(samples, nrow, normalize=True,
    /// value_range=(-1, 1))</c> — images (count, C, H, W) clamped to [−1, 1] and mapped to [0, 1] in float32, laid out
    /// <paramref name="nrow"/> per row with <paramref name="padding"/> zero pixels around each, then
    /// <c>x·255 + 0.5</c> clamped and truncated to uint8. Returns (grid H, grid W, C) bytes.
    /// </summary>
    // images: (count, C, H, W) → grid: (rows·(H+p)+p, cols·(W+p)+p, C)
    public static byte[] PreviewGrid(ReadOnlySpan<float> images, int count, int channels, int height, int width, int nrow, int padding = 2)
    {
        if (count <= 0 || nrow <= 0 || padding < 0 || images.Length != (long)count * channels * height * width)
            throw new ArgumentException($"{images.Length} values are not {count} images of ({channels}, {height}, {width}) for a grid of {nrow} per row");
        int cols = Math.Min(nrow, count), rows = (count + cols - 1) / cols;
        int gridH = rows * (height + padding) + padding, gridW = cols * (width + padding) + padding;
        var grid = new byte[gridH * gridW * channels]; // padding stays 0 (0·255 + 0.5 truncates to 0)
        for (int k = 0; k < count; k++)
        {
            int top = k / cols * (height + padding) + padding, left = k % cols * (width + padding) + padding;
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        float v = images[((k * channels + c) * height + y) * width + x];
                        float unit = (Math.Clamp(v, -1f, 1f) - -1f) / 2f;
                        float scaled = Math.Clamp(unit * 255f + 0.5f, 0f, 255f);
                        grid[((top + y) * gridW + left + x) * channels + c] = (byte)scaled;
                    }
        }
        return grid;
    }
}
