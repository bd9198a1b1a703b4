namespace DyDiT.Eval.Workers.Networks;

/// <summary>What a sampler needs to know of a latent diffusion network's configuration (DiT, DyDiT, SparseDiT).</summary>
public interface ILatentNetworkConfig
{
    int InChannels { get; }

    /// <summary>Latent side length (image size / 8).</summary>
    int InputSize { get; }

    /// <summary>ε and, with learned variance, the interpolation v.</summary>
    int OutChannels { get; }

    bool LearnSigma { get; }

    int NumClasses { get; }

    /// <summary>The label of the unconditional (classifier-free) branch, or null when the model has none.</summary>
    int? NullClass { get; }
}
