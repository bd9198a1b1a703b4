using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>The argument checks and the forward_with_cfg batch that DiT, DyDiT and SparseDiT share.</summary>
internal static class LatentInputs
{
    /// <summary>Checks model(x, t, y)'s arguments: x (B, C, H, W) with the configured C and H = W = input_size, B timesteps and labels. Returns B.</summary>
    public static int CheckForward(string model, ILatentNetworkConfig config, Tensor x, int timesteps, int labels)
    {
        if (x.Rank != 4 || x.Dim(1) != config.InChannels || x.Dim(2) != config.InputSize || x.Dim(3) != config.InputSize)
            throw new ArgumentException($"{model} expects x of shape (B, {config.InChannels}, {config.InputSize}, {config.InputSize}), got {x}");
        int b = x.Dim(0);
        if (timesteps != b || labels != b)
            throw new ArgumentException($"{model} got {b} latents but {timesteps} timesteps and {labels} labels");
        return b;
    }

    /// <summary>
    /// forward_with_cfg's model input: of x (2n, C, H, W) only the conditional half x[:n] is used, fed twice
    /// ([x[:n]; x[:n]]), as in the official code. The caller owns the returned tensor.
    /// </summary>
    public static Tensor ConditionalHalfTwice(IBackend backend, Tensor x, ILatentNetworkConfig config)
    {
        if (x.Rank != 4 || x.Dim(0) % 2 != 0) throw new ArgumentException($"forward_with_cfg needs an even batch (B, C, H, W), got {x}");
        if (config.OutChannels < Dit.GuidedChannels) throw new InvalidOperationException($"forward_with_cfg guides {Dit.GuidedChannels} channels; this model outputs {config.OutChannels}");
        int half = checked((int)(x.Length / 2));
        var combined = backend.Empty(x.Shape.ToArray());
        using var source = x.Reshape(1, -1);
        using var target = combined.Reshape(1, -1);
        backend.CopyChannels(source, 0, half, target, 0);    // [x[:n];
        backend.CopyChannels(source, 0, half, target, half); //  x[:n]]
        return combined;
    }
}
