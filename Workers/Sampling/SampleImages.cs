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
}
