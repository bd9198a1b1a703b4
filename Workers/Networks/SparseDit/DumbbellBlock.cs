using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// FlexDiT's DumbbellBlock, given the pooled tokens x and the full-resolution tokens y that were pooled:
/// token_merge_blocks (x attends to y) → semantic_blocks (DiT blocks on x) → token_recover_blocks (back to the full
/// grid, attending to x) → normal_blocks (DiT blocks on the full grid). As published, the dumbbell ignores the
/// attention bias the model passes it. Keys under <c>{name}.{token_merge_blocks,semantic_blocks,token_recover_blocks,normal_blocks}.{j}</c>.
/// </summary>
public sealed class DumbbellBlock : IDisposable
{
    public DumbbellBlock(StateDictReader w, IBackend backend, string name, int hiddenSize, int gridSize, int heads, int mlpHidden, DumbbellGroup group)
    {
        Name = name;
        token_merge_blocks = new CrossDitBlock[group.TokenMerge];
        semantic_blocks = new DitBlock[group.Semantic];
        token_recover_blocks = new RecoveryBlock[group.Recover];
        normal_blocks = new DitBlock[group.Normal];
        try
        {
            for (int j = 0; j < group.TokenMerge; j++)
                token_merge_blocks[j] = new CrossDitBlock(w, backend, $"{name}.token_merge_blocks.{j}", hiddenSize, heads, mlpHidden);
            for (int j = 0; j < group.Semantic; j++)
                semantic_blocks[j] = new DitBlock(w, backend, $"{name}.semantic_blocks.{j}", hiddenSize, heads, mlpHidden);
            for (int j = 0; j < group.Recover; j++)
                token_recover_blocks[j] = new RecoveryBlock(w, backend, $"{name}.token_recover_blocks.{j}", hiddenSize, gridSize, heads, mlpHidden);
            for (int j = 0; j < group.Normal; j++)
                normal_blocks[j] = new DitBlock(w, backend, $"{name}.normal_blocks.{j}", hiddenSize, heads, mlpHidden);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The state-dict prefix (<c>dumbbell_blocks.{i}</c>), also the prefix of the inspection names.</summary>
    public string Name { get; }

    public CrossDitBlock[] token_merge_blocks { get; }

    public DitBlock[] semantic_blocks { get; }

    public RecoveryBlock[] token_recover_blocks { get; }

    public DitBlock[] normal_blocks { get; }

    /// <summary>
    /// x: (B, S², D) pooled tokens (updated in place until recovery), y: (B, G², D) full-resolution tokens, c: (B, D) →
    /// a new (B, G², D) tensor (at least one recovery block is required). <paramref name="inspect"/> sees each
    /// sub-block's output as <c>{Name}.{kind}.{j}</c>.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor y, Tensor c, MacCounter? macs, Action<string, Tensor>? inspect = null)
    {
        if (token_recover_blocks.Length == 0) throw new InvalidOperationException($"{Name} has no recovery block");
        for (int j = 0; j < token_merge_blocks.Length; j++)
        {
            token_merge_blocks[j].Forward(x, y, c, macs);
            inspect?.Invoke($"{Name}.token_merge_blocks.{j}", x);
        }
        for (int j = 0; j < semantic_blocks.Length; j++)
        {
            semantic_blocks[j].Forward(x, c, macs);
            inspect?.Invoke($"{Name}.semantic_blocks.{j}", x);
        }
        Tensor current = x;
        try
        {
            for (int j = 0; j < token_recover_blocks.Length; j++)
            {
                var next = token_recover_blocks[j].Forward(current, y, c, macs);
                if (!ReferenceEquals(current, x)) current.Dispose();
                current = next;
                inspect?.Invoke($"{Name}.token_recover_blocks.{j}", current);
            }
            for (int j = 0; j < normal_blocks.Length; j++)
            {
                normal_blocks[j].Forward(current, c, macs);
                inspect?.Invoke($"{Name}.normal_blocks.{j}", current);
            }
            return current;
        }
        catch
        {
            if (!ReferenceEquals(current, x)) current.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var block in token_merge_blocks) block?.Dispose();
        foreach (var block in semantic_blocks) block?.Dispose();
        foreach (var block in token_recover_blocks) block?.Dispose();
        foreach (var block in normal_blocks) block?.Dispose();
    }
}
