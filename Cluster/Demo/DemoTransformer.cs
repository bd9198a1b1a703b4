using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Cluster.Demo;

/// <summary>
/// Random DiT weights in the official <c>models.DiT</c> state-dict layout (key names, order and shapes of
/// facebookresearch/DiT, which DyDiT keeps). DiT's own <c>initialize_weights</c> cannot be used as is: it zeroes every
/// adaLN modulation and the final linear layer (adaLN-Zero), so an untrained DiT outputs zeros and every image would
/// be the same. Instead:
/// <list type="bullet">
/// <item>every Linear weight (patch embedding, timestep MLP, attention, MLP, adaLN modulation, final layer) is drawn
///   N(0, 2 / (fan_in + fan_out)): a normal with the variance of the Xavier-uniform initialisation DiT gives its
///   other Linears, here also for the layers DiT zeroes;</item>
/// <item>biases N(0, 0.02²); the label table, null-class row included, N(0, <see cref="LabelStd"/>²) so the class
///   conditioning (and so classifier-free guidance) visibly changes the output;</item>
/// <item><c>pos_embed</c> is the fixed 2-D sin-cos table the official code computes (it is a non-trainable parameter,
///   so checkpoints carry it).</item>
/// </list>
/// </summary>
internal static class DemoTransformer
{
    /// <summary>Standard deviation of the label-table rows.</summary>
    public const double LabelStd = 0.5;

    /// <summary>Standard deviation of every bias.</summary>
    public const double BiasStd = 0.02;

    /// <summary>The demo's DiT: 8×8×4 latents (64×64 images), patch 2 (16 tokens), width 64, 3 blocks, 4 heads, 10 classes + null.</summary>
    public static DitConfig Config { get; } = new DitConfig(
        InputSize: 8, PatchSize: 2, InChannels: 4, HiddenSize: 64, Depth: 3, NumHeads: 4, MlpRatio: 4.0,
        ClassDropoutProb: 0.1, NumClasses: 10, LearnSigma: true).Validated();

    /// <summary>The DiT state dict of <paramref name="config"/>, in the official key order.</summary>
    public static DemoWeights DitWeights(DitConfig config, DemoRandom random)
    {
        int d = config.HiddenSize, p = config.PatchSize, c = config.InChannels, mlp = config.MlpHidden;
        var w = new DemoWeights();
        void Linear(string name, int outputs, int inputs, params long[] shape)
        {
            double std = Math.Sqrt(2.0 / (inputs + outputs));
            w.Add(name + ".weight", random.Normal((long)outputs * inputs, std), shape.Length > 0 ? shape : [outputs, inputs]);
            w.Add(name + ".bias", random.Normal(outputs, BiasStd), outputs);
        }

        w.Add("pos_embed", SinCosPositionalEmbedding.Build(d, config.GridSize), 1, config.Tokens, d);
        Linear("x_embedder.proj", d, c * p * p, d, c, p, p); // Conv2d(C, D, p, stride p): fan_in C·p², fan_out D as DiT's xavier on the flattened weight
        Linear("t_embedder.mlp.0", d, TimestepEmbedder.FrequencyEmbeddingSize);
        Linear("t_embedder.mlp.2", d, d);
        w.Add("y_embedder.embedding_table.weight", random.Normal((long)config.LabelTableRows * d, LabelStd), config.LabelTableRows, d);
        for (int i = 0; i < config.Depth; i++)
        {
            string b = $"blocks.{i}";
            Linear(b + ".attn.qkv", 3 * d, d);
            Linear(b + ".attn.proj", d, d);
            Linear(b + ".mlp.fc1", mlp, d);
            Linear(b + ".mlp.fc2", d, mlp);
            Linear(b + ".adaLN_modulation.1", 6 * d, d);
        }
        Linear("final_layer.linear", p * p * config.OutChannels, d);
        Linear("final_layer.adaLN_modulation.1", 2 * d, d);
        return w;
    }

    /// <summary>How the weights were drawn, for the model JSON.</summary>
    public const string Description =
        "random weights for a pipeline demo, deterministic from the seed (Philox streams, one per tensor): every Linear/Conv " +
        "weight ~ N(0, 2/(fan_in+fan_out)) (Xavier variance, also for the adaLN and final layers that DiT zero-initialises), " +
        "biases ~ N(0, 0.02^2), label table ~ N(0, 0.5^2), pos_embed = the official fixed 2-D sin-cos table";
}
