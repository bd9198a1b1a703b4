using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Vae;

/// <summary>
/// The decode half of diffusers' <c>AutoencoderKL</c> (stabilityai/sd-vae-ft-ema, -mse), as DiT's sampling scripts use
/// it: <c>vae.decode(latents / 0.18215).sample</c>. The block structure comes from the folder's <c>config.json</c>:
/// <code>
///   post_quant_conv (1×1) → decoder.conv_in (3×3) → decoder.mid_block: resnet, single-head attention, resnet
///   → decoder.up_blocks[0..B): channels reversed(block_out_channels), layers_per_block + 1 resnets each,
///     nearest 2× upsampling + 3×3 conv after every block but the last
///   → decoder.conv_norm_out (GroupNorm, eps 1e-6) → SiLU → decoder.conv_out (3×3)
/// </code>
/// Activations are channels-last inside; the input and output are NCHW. Field names are the state-dict keys.
/// </summary>
public sealed class VaeDecoder : IDisposable
{
    /// <summary>The latent scale the DiT scripts hard-code: the decoder's input is <c>latents / LatentScale</c>.</summary>
    public const float LatentScale = 0.18215f;

#pragma warning disable IDE1006 // names follow the state dict
    private readonly VaeConv? post_quant_conv;
    private readonly VaeConv conv_in;
    private readonly MidBlock mid_block;
    private readonly UpBlock[] up_blocks;
    private readonly VaeGroupNorm conv_norm_out;
    private readonly VaeConv conv_out;
#pragma warning restore IDE1006

    private readonly IBackend _backend;

    private VaeDecoder(VaeConfig config, VaeWeights w, IBackend backend)
    {
        Config = config;
        _backend = backend;
        var b = backend;
        var channels = config.BlockOutChannels;
        int groups = config.NormNumGroups, latent = config.LatentChannels, top = channels[^1];
        if (config.UsePostQuantConv) post_quant_conv = new VaeConv(w, b, "post_quant_conv", latent, latent, 1);
        conv_in = new VaeConv(w, b, "decoder.conv_in", latent, top, 3);
        mid_block = new MidBlock(w, b, "decoder.mid_block", top, groups, config.MidBlockAddAttention);
        up_blocks = new UpBlock[channels.Count];
        int previous = top;
        for (int i = 0; i < channels.Count; i++)
        {
            int output = channels[channels.Count - 1 - i];
            bool last = i == channels.Count - 1;
            up_blocks[i] = new UpBlock(w, b, $"decoder.up_blocks.{i}", previous, output, config.LayersPerBlock + 1, groups, upsample: !last);
            previous = output;
        }
        conv_norm_out = new VaeGroupNorm(w, b, "decoder.conv_norm_out", channels[0], groups);
        conv_out = new VaeConv(w, b, "decoder.conv_out", channels[0], config.OutChannels, 3);
        w.EnsureAllUsed();
    }

    public VaeConfig Config { get; }

    /// <summary>
    /// Loads a diffusers VAE folder: <c>config.json</c> plus <c>diffusion_pytorch_model.safetensors</c>, or, when that
    /// is absent, <c>diffusion_pytorch_model.bin</c> (diffusers' own order of preference). Loading is strict: a missing,
    /// unexpected (outside the unused encoder half) or misshapen key raises <see cref="TensorFileException"/> naming
    /// the file, the key and the shapes. Attention weights may use either key layout.
    /// </summary>
    public static VaeDecoder Load(string folder, IBackend backend)
    {
        var (config, weights) = Files(folder);
        return Load(config, weights, backend);
    }

    /// <summary>The config and weights files <see cref="Load(string, IBackend)"/> reads from a diffusers folder.</summary>
    public static (string Config, string Weights) Files(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: VAE folder not found");
        var weights = new[] { "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin" }
            .Select(f => Path.Combine(folder, f)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"{folder}: no diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin",
                Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        var config = Path.Combine(folder, "config.json");
        if (!File.Exists(config)) throw new FileNotFoundException($"{config}: file not found", config);
        return (config, weights);
    }

    /// <summary>Loads from an explicit config file and weights file (.safetensors or a torch.save state dict).</summary>
    public static VaeDecoder Load(string configPath, string weightsPath, IBackend backend)
    {
        var config = VaeConfig.Read(configPath);
        return VaeWeights.Open(weightsPath, w => new VaeDecoder(config, w, backend));
    }

    /// <summary>
    /// Builds the decoder from state-dict tensors (strictly, as <see cref="Load(string, IBackend)"/>); they are read
    /// during the call. <paramref name="source"/> names them in error messages.
    /// </summary>
    public static VaeDecoder FromStateDict(VaeConfig config, IEnumerable<KeyValuePair<string, StoredTensor>> stateDict, string source, IBackend backend)
        => new(config, new VaeWeights(stateDict, source), backend);

    /// <summary>
    /// Decodes <paramref name="latents"/> (N, latent_channels, h, w), NCHW, already divided by <see cref="LatentScale"/>,
    /// into images (N, out_channels, h·f, w·f), NCHW, roughly in [−1, 1] (f = <see cref="VaeConfig.UpsampleFactor"/>).
    /// The caller owns the result. <paramref name="observe"/>, if given, sees the output of each stage under its module
    /// name (<c>post_quant_conv</c>, <c>decoder.conv_in</c>, <c>decoder.mid_block</c>, <c>decoder.up_blocks.{i}</c>,
    /// <c>decoder.conv_norm_out</c>) as an NHWC tensor that is only valid during the call.
    /// </summary>
    public Tensor Decode(Tensor latents, Action<string, Tensor>? observe = null)
    {
        if (latents.Rank != 4 || latents.Dim(1) != Config.LatentChannels)
            throw new ArgumentException($"the VAE decodes (N, {Config.LatentChannels}, h, w) latents, got {latents}");
        int n = latents.Dim(0), c = latents.Dim(1), h = latents.Dim(2), w = latents.Dim(3);

        var x = _backend.Empty(n, h, w, c);
        using (var nchw = latents.Reshape(n, c, h * w))
        using (var nhwc = x.Reshape(n, h * w, c))
            _backend.TransposeLastTwo(nchw, nhwc);

        if (post_quant_conv is not null)
        {
            x = x.Then(post_quant_conv.Forward);
            observe?.Invoke("post_quant_conv", x);
        }
        x = x.Then(conv_in.Forward);                                     // (N, h, w, C_top)
        observe?.Invoke("decoder.conv_in", x);
        x = x.Then(mid_block.Forward);
        observe?.Invoke("decoder.mid_block", x);
        for (int i = 0; i < up_blocks.Length; i++)
        {
            x = x.Then(up_blocks[i].Forward);                            // ×2 spatially except the last
            observe?.Invoke($"decoder.up_blocks.{i}", x);
        }
        conv_norm_out.Forward(x, x);
        observe?.Invoke("decoder.conv_norm_out", x);
        _backend.Silu(x, x);
        x = x.Then(conv_out.Forward);                                    // (N, H, W, out_channels)

        int oh = x.Dim(1), ow = x.Dim(2), oc = x.Dim(3);
        var images = _backend.Empty(n, oc, oh, ow);
        using (x)
        using (var nhwc = x.Reshape(n, oh * ow, oc))
        using (var nchw = images.Reshape(n, oc, oh * ow))
            _backend.TransposeLastTwo(nhwc, nchw);
        return images;
    }

    /// <summary>
    /// DiT's <c>sample_ddp.py</c> conversion to bytes: <c>clamp(127.5 · x + 128, 0, 255)</c> in float32, NCHW → NHWC,
    /// then truncation toward zero (<c>.to(torch.uint8)</c>), i.e. round-half-up of 127.5 · x + 127.5. NaN maps to 0.
    /// </summary>
    public static byte[] ToUint8Hwc(ReadOnlySpan<float> imagesNchw, int count, int channels, int height, int width)
    {
        var result = new byte[checked(count * channels * height * width)];
        ToUint8Hwc(imagesNchw, count, channels, height, width, result);
        return result;
    }

    /// <inheritdoc cref="ToUint8Hwc(ReadOnlySpan{float}, int, int, int, int)"/>
    public static void ToUint8Hwc(ReadOnlySpan<float> imagesNchw, int count, int channels, int height, int width, Span<byte> destinationNhwc)
    {
        long total = (long)count * channels * height * width;
        if (imagesNchw.Length != total || destinationNhwc.Length != total)
            throw new ArgumentException($"({count}, {channels}, {height}, {width}) images need {total} values; got {imagesNchw.Length} in, {destinationNhwc.Length} out");
        int plane = height * width;
        for (int n = 0; n < count; n++)
            for (int c = 0; c < channels; c++)
            {
                var source = imagesNchw.Slice((n * channels + c) * plane, plane);
                int at = n * plane * channels + c;
                for (int p = 0; p < plane; p++, at += channels)
                {
                    float v = 127.5f * source[p];
                    v += 128f;                                            // two float32 roundings, as torch
                    destinationNhwc[at] = v >= 255f ? (byte)255 : v > 0f ? (byte)v : (byte)0; // (byte) truncates
                }
            }
    }

    public void Dispose()
    {
        post_quant_conv?.Dispose();
        conv_in.Dispose();
        mid_block.Dispose();
        foreach (var block in up_blocks) block.Dispose();
        conv_norm_out.Dispose();
        conv_out.Dispose();
    }

    /// <summary>UNetMidBlock2D: <c>resnets.0</c> → <c>attentions.0</c> → <c>resnets.1</c>, all at the top channel count.</summary>
    private sealed class MidBlock : IDisposable
    {
#pragma warning disable IDE1006
        private readonly VaeResnetBlock[] resnets;
        private readonly VaeAttention? attention;
#pragma warning restore IDE1006

        public MidBlock(VaeWeights w, IBackend b, string name, int channels, int groups, bool withAttention)
        {
            resnets = [new VaeResnetBlock(w, b, $"{name}.resnets.0", channels, channels, groups),
                       new VaeResnetBlock(w, b, $"{name}.resnets.1", channels, channels, groups)];
            if (withAttention) attention = new VaeAttention(w, b, $"{name}.attentions.0", channels, groups);
        }

        public Tensor Forward(Tensor x)
        {
            var h = resnets[0].Forward(x);
            if (attention is not null) h = h.Then(attention.Forward);
            return h.Then(resnets[1].Forward);
        }

        public void Dispose()
        {
            foreach (var r in resnets) r.Dispose();
            attention?.Dispose();
        }
    }

    /// <summary>UpDecoderBlock2D: <c>resnets.{0..L}</c> (the first maps in → out channels), then <c>upsamplers.0</c> if any.</summary>
    private sealed class UpBlock : IDisposable
    {
#pragma warning disable IDE1006
        private readonly VaeResnetBlock[] resnets;
        private readonly VaeUpsampler? upsampler;
#pragma warning restore IDE1006

        public UpBlock(VaeWeights w, IBackend b, string name, int inChannels, int outChannels, int layers, int groups, bool upsample)
        {
            resnets = new VaeResnetBlock[layers];
            for (int i = 0; i < layers; i++)
                resnets[i] = new VaeResnetBlock(w, b, $"{name}.resnets.{i}", i == 0 ? inChannels : outChannels, outChannels, groups);
            if (upsample) upsampler = new VaeUpsampler(w, b, $"{name}.upsamplers.0", outChannels);
        }

        public Tensor Forward(Tensor x)
        {
            var h = resnets[0].Forward(x);
            for (int i = 1; i < resnets.Length; i++) h = h.Then(resnets[i].Forward);
            return upsampler is null ? h : h.Then(upsampler.Forward);
        }

        public void Dispose()
        {
            foreach (var r in resnets) r.Dispose();
            upsampler?.Dispose();
        }
    }
}
