namespace DyDiT.Eval.Workers.Networks.Layers;

/// <summary>What a sampler needs to know of a latent diffusion network's configuration (DiT, DyDiT, SparseDiT).</summary>
public interface ILatentNetworkConfig
{
    /// <summary>Latent channels C of x.</summary>
    int InChannels { get; }

    /// <summary>Latent height and width (image size / 8 for the sd-vae).</summary>
    int InputSize { get; }

    /// <summary>Channels of the output: 2·C with learn_sigma (ε, then the variance interpolation v), else C.</summary>
    int OutChannels { get; }

    /// <summary>Whether the output carries the learned variance (the DiT samplers require it).</summary>
    bool LearnSigma { get; }

    /// <summary>Real classes: labels are drawn from [0, NumClasses).</summary>
    int NumClasses { get; }

    /// <summary>The label of the unconditional (classifier-free) branch, or null when the model has none.</summary>
    int? NullClass { get; }
}
