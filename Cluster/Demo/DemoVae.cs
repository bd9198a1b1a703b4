using System.Text.Json;

namespace DyDiT.Eval.Cluster.Demo;

/// <summary>
/// A random diffusers <c>AutoencoderKL</c> in the layout <c>save_pretrained</c> writes (current attention key names,
/// encoder half included although decoding never reads it), sized for the demo: four UpDecoderBlock2D as
/// sd-vae-ft-ema, so 8× upsampling (8×8 latents → 64×64 images), but narrow. Weights as the fixtures' tiny VAE:
/// GroupNorm weights 1 + N(0, 0.1²), convolution and linear weights N(0, 1/fan_in), biases N(0, 0.05²); the final
/// <c>decoder.conv_out</c> is drawn at half that scale so decoded pixels stay mostly inside [−1, 1] instead of
/// saturating. Every GroupNorm normalises what it sees, so images stay varied even for the large latents an untrained
/// DiT produces.
/// </summary>
internal static class DemoVae
{
    /// <summary>The demo VAE's shape.</summary>
    public sealed record Shape(int[] BlockOutChannels, int LayersPerBlock, int NormNumGroups, int LatentChannels = 4, int InChannels = 3,
        int OutChannels = 3, int SampleSize = 64);

    public static Shape Demo { get; } = new([16, 32, 32, 32], LayersPerBlock: 1, NormNumGroups: 8);

    private const double NormStd = 0.1, BiasStd = 0.05, ConvOutGain = 0.5;

    /// <summary>diffusers' <c>config.json</c> for <paramref name="shape"/>.</summary>
    public static string ConfigJson(Shape shape)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("_class_name", "AutoencoderKL");
            w.WriteString("_diffusers_version", "0.25.1");
            w.WriteString("act_fn", "silu");
            w.WriteStartArray("block_out_channels");
            foreach (var c in shape.BlockOutChannels) w.WriteNumberValue(c);
            w.WriteEndArray();
            w.WriteStartArray("down_block_types");
            foreach (var _ in shape.BlockOutChannels) w.WriteStringValue("DownEncoderBlock2D");
            w.WriteEndArray();
            w.WriteBoolean("force_upcast", true);
            w.WriteNumber("in_channels", shape.InChannels);
            w.WriteNumber("latent_channels", shape.LatentChannels);
            w.WriteNumber("layers_per_block", shape.LayersPerBlock);
            w.WriteNumber("norm_num_groups", shape.NormNumGroups);
            w.WriteNumber("out_channels", shape.OutChannels);
            w.WriteNumber("sample_size", shape.SampleSize);
            w.WriteNumber("scaling_factor", 0.18215);
            w.WriteStartArray("up_block_types");
            foreach (var _ in shape.BlockOutChannels) w.WriteStringValue("UpDecoderBlock2D");
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Every tensor of the autoencoder (encoder, quant convs, decoder) in diffusers' module order.</summary>
    public static DemoWeights Weights(Shape shape, DemoRandom random)
    {
        var w = new DemoWeights();
        var ch = shape.BlockOutChannels;
        int latent = shape.LatentChannels;

        void Conv(string name, int outputs, int inputs, int k, double gain = 1)
        {
            w.Add(name + ".weight", random.Normal((long)outputs * inputs * k * k, gain / Math.Sqrt(inputs * k * k)), outputs, inputs, k, k);
            w.Add(name + ".bias", random.Normal(outputs, BiasStd), outputs);
        }
        void Linear(string name, int outputs, int inputs)
        {
            w.Add(name + ".weight", random.Normal((long)outputs * inputs, 1 / Math.Sqrt(inputs)), outputs, inputs);
            w.Add(name + ".bias", random.Normal(outputs, BiasStd), outputs);
        }
        void Norm(string name, int channels)
        {
            w.Add(name + ".weight", random.Normal(channels, NormStd, mean: 1), channels);
            w.Add(name + ".bias", random.Normal(channels, BiasStd), channels);
        }
        void Resnet(string name, int inputs, int outputs)
        {
            Norm(name + ".norm1", inputs);
            Conv(name + ".conv1", outputs, inputs, 3);
            Norm(name + ".norm2", outputs);
            Conv(name + ".conv2", outputs, outputs, 3);
            if (inputs != outputs) Conv(name + ".conv_shortcut", outputs, inputs, 1);
        }
        void MidBlock(string name, int channels)
        {
            Resnet(name + ".resnets.0", channels, channels);
            Norm(name + ".attentions.0.group_norm", channels);
            Linear(name + ".attentions.0.to_q", channels, channels);
            Linear(name + ".attentions.0.to_k", channels, channels);
            Linear(name + ".attentions.0.to_v", channels, channels);
            Linear(name + ".attentions.0.to_out.0", channels, channels);
            Resnet(name + ".resnets.1", channels, channels);
        }

        // encoder: conv_in, down blocks (layers_per_block resnets, a stride-2 conv after all but the last), mid, out
        Conv("encoder.conv_in", ch[0], shape.InChannels, 3);
        int previous = ch[0];
        for (int i = 0; i < ch.Length; i++)
        {
            for (int r = 0; r < shape.LayersPerBlock; r++) Resnet($"encoder.down_blocks.{i}.resnets.{r}", r == 0 ? previous : ch[i], ch[i]);
            if (i < ch.Length - 1) Conv($"encoder.down_blocks.{i}.downsamplers.0.conv", ch[i], ch[i], 3);
            previous = ch[i];
        }
        MidBlock("encoder.mid_block", ch[^1]);
        Norm("encoder.conv_norm_out", ch[^1]);
        Conv("encoder.conv_out", 2 * latent, ch[^1], 3);

        // decoder: conv_in, mid, up blocks in reversed channel order (layers_per_block + 1 resnets, upsampler but the last), out
        Conv("decoder.conv_in", ch[^1], latent, 3);
        MidBlock("decoder.mid_block", ch[^1]);
        previous = ch[^1];
        for (int i = 0; i < ch.Length; i++)
        {
            int output = ch[ch.Length - 1 - i];
            for (int r = 0; r <= shape.LayersPerBlock; r++) Resnet($"decoder.up_blocks.{i}.resnets.{r}", r == 0 ? previous : output, output);
            if (i < ch.Length - 1) Conv($"decoder.up_blocks.{i}.upsamplers.0.conv", output, output, 3);
            previous = output;
        }
        Norm("decoder.conv_norm_out", ch[0]);
        Conv("decoder.conv_out", shape.OutChannels, ch[0], 3, ConvOutGain);

        Conv("quant_conv", 2 * latent, 2 * latent, 1);
        Conv("post_quant_conv", latent, latent, 1);
        return w;
    }
}
