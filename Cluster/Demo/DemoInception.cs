namespace DyDiT.Eval.Cluster.Demo;

/// <summary>
/// Random weights for the FID Inception network under the published key names and shapes of
/// <c>pt_inception-2015-12-05-6726825d.pth</c> (pytorch-fid's port of the 2015-12-05 TF graph): for each of the 94
/// conv blocks <c>&lt;block&gt;.bn.weight|bias|running_mean|running_var</c> then <c>&lt;block&gt;.conv.weight</c>,
/// blocks in torch-fidelity's converter order (branches sorted by name inside each Mixed block), then
/// <c>fc.weight</c> [1008, 2048] and <c>fc.bias</c>; no <c>num_batches_tracked</c>. 472 tensors, 23,885,392 values.
/// Scales keep every layer's activations of order one without calibration: convolution weights N(0, 2/fan_in)
/// (He, for the ReLU after each block), BatchNorm γ = 1 + N(0, 0.1²), β and running mean N(0, 0.1²), running variance
/// exp(N(0, 0.2²)) (positive), fc weights N(0, 1/2048) and bias N(0, 0.1²).
/// </summary>
internal static class DemoInception
{
    private const double BnStd = 0.1, LogVarStd = 0.2, FcBiasStd = 0.1;

    /// <summary>(block name, in, out, kh, kw) of every conv block, in the published file's order.</summary>
    public static IReadOnlyList<(string Name, int In, int Out, int Kh, int Kw)> ConvBlocks { get; } = Blocks();

    public const int PoolFeatures = 2048, Classes = 1008;

    public static DemoWeights Weights(DemoRandom random)
    {
        var w = new DemoWeights();
        foreach (var (name, cin, cout, kh, kw) in ConvBlocks)
        {
            w.Add(name + ".bn.weight", random.Normal(cout, BnStd, mean: 1), cout);
            w.Add(name + ".bn.bias", random.Normal(cout, BnStd), cout);
            w.Add(name + ".bn.running_mean", random.Normal(cout, BnStd), cout);
            var variance = random.Normal(cout, LogVarStd);
            for (int i = 0; i < variance.Length; i++) variance[i] = MathF.Exp(variance[i]);
            w.Add(name + ".bn.running_var", variance, cout);
            int fanIn = cin * kh * kw;
            w.Add(name + ".conv.weight", random.Normal((long)cout * fanIn, Math.Sqrt(2.0 / fanIn)), cout, cin, kh, kw);
        }
        w.Add("fc.weight", random.Normal((long)Classes * PoolFeatures, 1 / Math.Sqrt(PoolFeatures)), Classes, PoolFeatures);
        w.Add("fc.bias", random.Normal(Classes, FcBiasStd), Classes);
        return w;
    }

    private static List<(string, int, int, int, int)> Blocks()
    {
        var list = new List<(string Name, int In, int Out, int Kh, int Kw)>
        {
            ("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
            ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3),
        };
        void Mixed(string block, params (string Branch, int In, int Out, int Kh, int Kw)[] branches)
        {
            foreach (var b in branches.OrderBy(b => b.Branch, StringComparer.Ordinal)) list.Add(($"{block}.{b.Branch}", b.In, b.Out, b.Kh, b.Kw));
        }
        void A(string block, int cin, int pool) => Mixed(block,
            ("branch1x1", cin, 64, 1, 1), ("branch5x5_1", cin, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
            ("branch3x3dbl_1", cin, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3), ("branch_pool", cin, pool, 1, 1));
        void C(string block, int c7) => Mixed(block,
            ("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, c7, 1, 1), ("branch7x7_2", c7, c7, 1, 7), ("branch7x7_3", c7, 192, 7, 1),
            ("branch7x7dbl_1", 768, c7, 1, 1), ("branch7x7dbl_2", c7, c7, 7, 1), ("branch7x7dbl_3", c7, c7, 1, 7),
            ("branch7x7dbl_4", c7, c7, 7, 1), ("branch7x7dbl_5", c7, 192, 1, 7), ("branch_pool", 768, 192, 1, 1));
        void E(string block, int cin) => Mixed(block,
            ("branch1x1", cin, 320, 1, 1), ("branch3x3_1", cin, 384, 1, 1), ("branch3x3_2a", 384, 384, 1, 3), ("branch3x3_2b", 384, 384, 3, 1),
            ("branch3x3dbl_1", cin, 448, 1, 1), ("branch3x3dbl_2", 448, 384, 3, 3), ("branch3x3dbl_3a", 384, 384, 1, 3),
            ("branch3x3dbl_3b", 384, 384, 3, 1), ("branch_pool", cin, 192, 1, 1));

        A("Mixed_5b", 192, 32);
        A("Mixed_5c", 256, 64);
        A("Mixed_5d", 288, 64);
        Mixed("Mixed_6a", ("branch3x3", 288, 384, 3, 3), ("branch3x3dbl_1", 288, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3));
        C("Mixed_6b", 128);
        C("Mixed_6c", 160);
        C("Mixed_6d", 160);
        C("Mixed_6e", 192);
        Mixed("Mixed_7a", ("branch3x3_1", 768, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3), ("branch7x7x3_1", 768, 192, 1, 1),
            ("branch7x7x3_2", 192, 192, 1, 7), ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3));
        E("Mixed_7b", 1280);
        E("Mixed_7c", 2048);
        return list;
    }
}
