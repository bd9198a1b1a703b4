using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// The routing decisions of one DyDiT call, laid out like the official forward's extra outputs (0/1 as float32):
/// <see cref="AttnMasks"/> and <see cref="MlpMasks"/> (B, depth, H) with column 0 always 1, <see cref="TokenSelect"/>
/// (B, depth, T), and the router logits they came from: <see cref="AttnLogits"/>, <see cref="MlpLogits"/>
/// (B, depth, H − 1) and <see cref="TokenLogits"/> (B, depth, T). A decision is sigmoid(logit) &gt; 0.5 in float32
/// (i.e. logit &gt; 0). For a complete-model call every mask is 1 and the logits are 0 (no router ran).
/// </summary>
public sealed class DyDitRouting
{
    public DyDitRouting(int batch, int depth, int heads, int tokens, bool complete)
    {
        Batch = batch;
        Depth = depth;
        Heads = heads;
        Tokens = tokens;
        Complete = complete;
        AttnMasks = new float[batch * depth * heads];
        MlpMasks = new float[batch * depth * heads];
        TokenSelect = new float[batch * depth * tokens];
        AttnLogits = new float[batch * depth * (heads - 1)];
        MlpLogits = new float[batch * depth * (heads - 1)];
        TokenLogits = new float[batch * depth * tokens];
    }

    public int Batch { get; }

    public int Depth { get; }

    public int Heads { get; }

    public int Tokens { get; }

    /// <summary>True for <c>complete_model=True</c> calls: no routing, the dense DiT path.</summary>
    public bool Complete { get; }

    public float[] AttnMasks { get; }

    public float[] MlpMasks { get; }

    public float[] TokenSelect { get; }

    public float[] AttnLogits { get; }

    public float[] MlpLogits { get; }

    public float[] TokenLogits { get; }

    /// <summary>The official hard decision at inference: sigmoid(logit) &gt; 0.5, evaluated in float32.</summary>
    public static bool Decide(float logit) => 1f / (1f + MathF.Exp(-logit)) > 0.5f;

    public int ActiveHeads(int sample, int block) => Count(AttnMasks.AsSpan((sample * Depth + block) * Heads, Heads));

    public int ActiveGroups(int sample, int block) => Count(MlpMasks.AsSpan((sample * Depth + block) * Heads, Heads));

    public int SelectedTokens(int sample, int block) => Count(TokenSelect.AsSpan((sample * Depth + block) * Tokens, Tokens));

    /// <summary>
    /// The "real activate rate" of DyDiT's loss.py (<c>DynamicLoss._get_token_loss</c>), batch mean of, per sample,
    /// Σ_blocks [mlp·(groups/H)·(tokens/T) + attn·(heads/H)] / (depth·(attn + mlp)). <paramref name="attnMacs"/> and
    /// <paramref name="mlpMacs"/> are the per-block costs it assumes (only their ratio matters), e.g.
    /// <see cref="LossPyFlops"/> or <see cref="BlockMultiplyAccumulates"/> of a config.
    /// </summary>
    public double ActivateRatio(double attnMacs, double mlpMacs)
    {
        if (Batch == 0) return double.NaN;
        double sum = 0;
        for (int n = 0; n < Batch; n++)
        {
            double flops = 0;
            for (int l = 0; l < Depth; l++)
                flops += mlpMacs * ActiveGroups(n, l) / Heads * SelectedTokens(n, l) / Tokens + attnMacs * ActiveHeads(n, l) / Heads;
            sum += flops / ((attnMacs + mlpMacs) * Depth);
        }
        return sum / Batch;
    }

    /// <summary>Means of the three mask tensors, what the official forward_with_cfg prints ("Attn Channel", "MLP Channel", "MLP token").</summary>
    public (double AttnChannel, double MlpChannel, double MlpToken) MaskMeans()
        => (AttnMasks.Average(v => (double)v), MlpMasks.Average(v => (double)v), TokenSelect.Average(v => (double)v));

    /// <summary>
    /// loss.py's per-block figures in GMACs (attention incl. qkv, proj and both attention products; MLP), which equal
    /// <see cref="BlockMultiplyAccumulates"/> of the model at 256² (T = 256). Known for DiT-S/2, DiT-B/2 and DiT-XL/2.
    /// </summary>
    public static (double Attn, double Mlp) LossPyFlops(string model) => model switch
    {
        "DiT-S/2" => (0.201326592, 0.301989888),
        "DiT-B/2" => (0.704643072, 1.207959552),
        "DiT-XL/2" => (1.50994944, 2.717908992),
        _ => throw new ArgumentException($"DyDiT's loss.py has FLOP constants for DiT-S/2, DiT-B/2 and DiT-XL/2 only, not '{model}'"),
    };

    /// <summary>
    /// Dense per-sample multiply-accumulates of one block's attention (qkv 3·T·D², proj T·D², q·kᵀ and p·v 2·T²·D) and
    /// MLP (2·T·D·hidden) for <paramref name="config"/>: the terms that head, group and token routing scale.
    /// </summary>
    public static (long Attn, long Mlp) BlockMultiplyAccumulates(DitConfig config)
    {
        long t = config.Tokens, d = config.HiddenSize;
        return (4 * t * d * d + 2 * t * t * d, 2 * t * d * config.MlpHidden);
    }

    private static int Count(ReadOnlySpan<float> mask)
    {
        int n = 0;
        foreach (var v in mask) if (v != 0) n++;
        return n;
    }
}
