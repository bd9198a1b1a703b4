using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks.Layers;

namespace DyDiT.Eval.Workers.Networks;

/// <summary>
/// DyDiT's width router (<c>dynamic_model.Router</c>): Linear(D, H − 1) on the timestep embedding; one logit per head
/// (or MLP channel group) 1..H−1, group 0 is always on. Key <c>{name}.router.*</c>.
/// </summary>
public sealed class DyDitRouter : IDisposable
{
    public DyDitRouter(StateDictReader w, IBackend backend, string name, int hiddenSize, int outputs)
        => router = Linear.Load(w, backend, name + ".router", hiddenSize, outputs);

    public Linear router { get; }

    public void Dispose() => router.Dispose();
}

/// <summary>
/// DyDiT's token router (<c>dynamic_model.TokenSelect</c>): Linear(D, D/16) → ReLU → Linear(D/16, 1) per token.
/// Keys <c>{name}.mlp_head.0.*</c>, <c>{name}.mlp_head.2.*</c>.
/// </summary>
public sealed class DyDitTokenSelect : IDisposable
{
    private readonly IBackend _backend;

    public DyDitTokenSelect(StateDictReader w, IBackend backend, string name, int hiddenSize)
    {
        _backend = backend;
        mlp_head_0 = Linear.Load(w, backend, name + ".mlp_head.0", hiddenSize, hiddenSize / 16);
        mlp_head_2 = Linear.Load(w, backend, name + ".mlp_head.2", hiddenSize / 16, 1);
    }

    public Linear mlp_head_0 { get; }

    public Linear mlp_head_2 { get; }

    // x: (B, T, D) → logits (B·T) on the host
    public float[] Logits(Tensor x, MacCounter macs)
    {
        int rows = checked((int)(x.Length / mlp_head_0.In));
        using var x2 = x.Reshape(rows, mlp_head_0.In);
        using var hidden = _backend.Empty(rows, mlp_head_0.Out);
        _backend.Gemm(x2, false, mlp_head_0.weight, true, hidden);
        _backend.BiasActivation(hidden, mlp_head_0.bias, relu: true, hidden);
        macs.Add((long)rows * mlp_head_0.In * mlp_head_0.Out);
        using var logits = mlp_head_2.Forward(hidden, macs);
        return logits.ToArray();
    }

    public void Dispose()
    {
        mlp_head_0.Dispose();
        mlp_head_2.Dispose();
    }
}

/// <summary>
/// One DyDiT block (DyDiT/models.py DiTBlock, inference path). With (shift₁ … gate₂) = adaLN(c):
/// x ← x + gate₁ · proj(heads of Attn(modulate(LN(x))) with head mask m_attn(t));
/// s = token_selection(x) ∈ {0, 1} per token (after the attention update);
/// x ← x + s · gate₂ · fc2(GELU(m_mlp(t) ⊙ fc1(modulate(LN(x))))).
/// The official code computes everything and multiplies by the masks; here masked work is skipped: only the active
/// heads' q/k/v rows of qkv and columns of proj, only the active channel groups' rows of fc1 and columns of fc2, and
/// the MLP branch only for the selected tokens (gathered, computed, scattered back). Same result up to summation order.
/// Keys under <c>blocks.{i}</c>: those of a DiT block plus <c>attn_rate.router.*</c>, <c>mlp_rate.router.*</c>,
/// <c>token_selection.mlp_head.{0,2}.*</c>.
/// </summary>
public sealed class DyDitBlock : IDisposable
{
    private readonly IBackend _backend;

    public DyDitBlock(StateDictReader w, IBackend backend, string name, int hiddenSize, int heads, int mlpHidden)
    {
        _backend = backend;
        HiddenSize = hiddenSize;
        Heads = heads;
        MlpHidden = mlpHidden;
        attn = new Attention(w, backend, name + ".attn", hiddenSize, heads);
        mlp = new Mlp(w, backend, name + ".mlp", hiddenSize, mlpHidden);
        adaLN_modulation = new AdaLnModulation(w, backend, name + ".adaLN_modulation", hiddenSize, chunks: 6);
        attn_rate = new DyDitRouter(w, backend, name + ".attn_rate", hiddenSize, heads - 1);
        mlp_rate = new DyDitRouter(w, backend, name + ".mlp_rate", hiddenSize, heads - 1);
        token_selection = new DyDitTokenSelect(w, backend, name + ".token_selection", hiddenSize);
    }

    public int HiddenSize { get; }

    public int Heads { get; }

    public int MlpHidden { get; }

    public int HeadDim => HiddenSize / Heads;

    /// <summary>Width of one MLP channel group: hidden channels [g·G, (g + 1)·G) belong to group g.</summary>
    public int GroupSize => MlpHidden / Heads;

    public Attention attn { get; }

    public Mlp mlp { get; }

    public AdaLnModulation adaLN_modulation { get; }

    public DyDitRouter attn_rate { get; }

    public DyDitRouter mlp_rate { get; }

    public DyDitTokenSelect token_selection { get; }

    /// <summary>
    /// x (B, T, D) updated in place; c (B, D). <paramref name="routing"/> already holds this block's head and group
    /// masks (they depend on t only); the token decisions and logits are written into it here.
    /// Returns the multiply-accumulates of the attention and MLP branches (the part routing scales).
    /// </summary>
    internal long Forward(Tensor x, Tensor c, int block, DyDitRouting routing, MacCounter macs)
    {
        int b = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        long branches = 0;
        var m = adaLN_modulation.Forward(c, macs);
        try
        {
            Tensor shift_msa = m[0], scale_msa = m[1], gate_msa = m[2], shift_mlp = m[3], scale_mlp = m[4], gate_mlp = m[5];

            // attention over the active heads, per group of samples sharing a head mask
            using (var h = AdaLnNorm.NormModulate(_backend, x, shift_msa, scale_msa))
            using (var a = _backend.Empty(b, t, d))
            {
                foreach (var (samples, active) in Groups(routing.AttnMasks, routing, block))
                    branches += AttentionOnHeads(h, samples, active, a);
                _backend.GatedAdd(x, gate_msa, a, x);
            }

            // token decisions on the updated residual stream
            if (!routing.Complete)
            {
                var logits = token_selection.Logits(x, macs);
                for (int n = 0; n < b; n++)
                    for (int i = 0; i < t; i++)
                    {
                        float logit = logits[n * t + i];
                        int at = (n * routing.Depth + block) * t + i;
                        routing.TokenLogits[at] = logit;
                        routing.TokenSelect[at] = DyDitRouting.Decide(logit) ? 1f : 0f;
                    }
            }

            // MLP over the active channel groups, for the selected tokens only
            foreach (var (samples, active) in Groups(routing.MlpMasks, routing, block))
                branches += MlpOnTokens(x, samples, active, block, routing, shift_mlp, scale_mlp, gate_mlp);
        }
        finally
        {
            foreach (var tensor in m) tensor.Dispose();
        }
        macs.Add(branches);
        return branches;
    }

    // h (B, T, D) normalised input; writes the proj output of the given samples into a (B, T, D); returns the MACs
    private long AttentionOnHeads(Tensor h, int[] samples, int[] activeHeads, Tensor a)
    {
        int b = h.Dim(0), t = h.Dim(1), d = h.Dim(2), hd = HeadDim, na = activeHeads.Length;
        bool whole = samples.Length == b;
        int[] rows = whole ? [] : TokenRows(samples, t);
        Tensor input = h;
        if (!whole)
        {
            input = _backend.Empty(samples.Length, t, d);
            _backend.GatherRows(h, rows, input);
        }
        try
        {
            int bg = samples.Length;
            var qkvBlocks = new int[3 * na]; // q, k, v sections of the qkv weight, the active heads of each
            for (int s = 0; s < 3; s++)
                for (int j = 0; j < na; j++) qkvBlocks[s * na + j] = s * Heads + activeHeads[j];
            using var q_k_v = _backend.Empty(bg, t, 3 * na * hd);
            _backend.LinearRowBlocks(input, attn.qkv.weight, attn.qkv.bias, qkvBlocks, hd, q_k_v);
            using var heads = _backend.Empty(bg, t, na * hd);
            _backend.MultiHeadAttention(q_k_v, na, heads);
            if (whole)
                _backend.LinearColumnBlocks(heads, attn.proj.weight, attn.proj.bias, activeHeads, hd, a);
            else
            {
                using var part = _backend.Empty(bg, t, d);
                _backend.LinearColumnBlocks(heads, attn.proj.weight, attn.proj.bias, activeHeads, hd, part);
                _backend.ScatterRows(part, rows, a);
            }
            // qkv rows of the active heads, q·kᵀ and p·v per active head, proj columns of the active heads
            return (long)bg * t * d * 3 * na * hd + 2L * bg * t * t * na * hd + (long)bg * t * na * hd * d;
        }
        finally
        {
            if (!ReferenceEquals(input, h)) input.Dispose();
        }
    }

    // the MLP branch for the selected tokens of the given samples, added into x; returns the MACs
    private long MlpOnTokens(Tensor x, int[] samples, int[] activeGroups, int block, DyDitRouting routing,
        Tensor shift, Tensor scale, Tensor gate)
    {
        int b = x.Dim(0), t = x.Dim(1), d = x.Dim(2), g = GroupSize, width = activeGroups.Length * g;
        var rows = new List<int>(samples.Length * t);
        var owner = new List<int>(samples.Length * t);
        foreach (int n in samples)
            for (int i = 0; i < t; i++)
                if (routing.TokenSelect[(n * routing.Depth + block) * t + i] != 0)
                {
                    rows.Add(n * t + i);
                    owner.Add(n);
                }
        int count = rows.Count;
        if (count == 0) return 0;
        long executed = 2L * count * d * width; // fc1 rows and fc2 columns of the active groups

        if (count == b * t)
        {
            // every token of every sample: the dense block's MLP, in place
            using var h = AdaLnNorm.NormModulate(_backend, x, shift, scale);
            using var f = MlpOnGroups(h, activeGroups, count, width);
            using var f3 = f.Reshape(b, t, d);
            _backend.GatedAdd(x, gate, f3, x);
            return executed;
        }
        var rowList = rows.ToArray();
        var ownerList = owner.ToArray();
        // gathered tokens as (count, 1, D) "samples" of one token each, with their sample's modulation rows
        using var xs = _backend.Empty(count, 1, d);
        _backend.GatherRows(x, rowList, xs);
        using var shiftRows = _backend.Empty(count, d);
        using var scaleRows = _backend.Empty(count, d);
        using var gateRows = _backend.Empty(count, d);
        _backend.GatherRows(shift, ownerList, shiftRows);
        _backend.GatherRows(scale, ownerList, scaleRows);
        _backend.GatherRows(gate, ownerList, gateRows);
        using (var hs = AdaLnNorm.NormModulate(_backend, xs, shiftRows, scaleRows))
        using (var f = MlpOnGroups(hs, activeGroups, count, width))
        using (var f3 = f.Reshape(count, 1, d))
            _backend.GatedAdd(xs, gateRows, f3, xs);
        _backend.ScatterRows(xs, rowList, x);
        return executed;
    }

    // h (rows, …, D) → fc2(GELU(fc1 restricted to the active groups)) as (rows, D)
    private Tensor MlpOnGroups(Tensor h, int[] activeGroups, int rows, int width)
    {
        using var hidden = _backend.Empty(rows, width);
        _backend.LinearRowBlocks(h, mlp.fc1.weight, mlp.fc1.bias, activeGroups, GroupSize, hidden);
        _backend.GeluTanh(hidden, hidden);
        var y = _backend.Empty(rows, HiddenSize);
        _backend.LinearColumnBlocks(hidden, mlp.fc2.weight, mlp.fc2.bias, activeGroups, GroupSize, y);
        return y;
    }

    /// <summary>Samples grouped by identical masks of this block: (sample indices, active head/group indices).</summary>
    private static List<(int[] Samples, int[] Active)> Groups(float[] masks, DyDitRouting routing, int block)
    {
        int h = routing.Heads;
        var groups = new List<(int[] Samples, int[] Active)>();
        var keys = new List<string>();
        var members = new List<List<int>>();
        for (int n = 0; n < routing.Batch; n++)
        {
            var mask = masks.AsSpan((n * routing.Depth + block) * h, h);
            var key = string.Create(h, mask.ToArray(), (span, m) => { for (int i = 0; i < m.Length; i++) span[i] = m[i] != 0 ? '1' : '0'; });
            int at = keys.IndexOf(key);
            if (at < 0)
            {
                keys.Add(key);
                members.Add([]);
                at = keys.Count - 1;
            }
            members[at].Add(n);
        }
        for (int i = 0; i < keys.Count; i++)
        {
            var active = Enumerable.Range(0, h).Where(j => keys[i][j] == '1').ToArray();
            groups.Add((members[i].ToArray(), active));
        }
        return groups;
    }

    private static int[] TokenRows(int[] samples, int t)
    {
        var rows = new int[samples.Length * t];
        for (int s = 0; s < samples.Length; s++)
            for (int i = 0; i < t; i++) rows[s * t + i] = samples[s] * t + i;
        return rows;
    }

    public void Dispose()
    {
        attn.Dispose();
        mlp.Dispose();
        adaLN_modulation.Dispose();
        attn_rate.Dispose();
        mlp_rate.Dispose();
        token_selection.Dispose();
    }
}
