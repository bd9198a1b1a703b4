using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>
/// The "FID Inception v3": the 2015-12-05 TensorFlow Inception graph that ADM's evaluator (and TTUR, pytorch-fid,
/// torch-fidelity) uses, rebuilt on an <see cref="IBackend"/>. It differs from torchvision's Inception v3 in its
/// blocks: the pool branches of Mixed_5b..5d, Mixed_6b..6e and Mixed_7b average without counting padded positions
/// (TensorFlow's SAME average pool), Mixed_7c's pool branch is a max pool, and the classifier has 1008 classes.
/// Every convolution is BasicConv2d = conv (no bias) → BatchNorm (eps 0.001, running statistics) → ReLU; the
/// BatchNorm is folded into the convolution when the weights are loaded.
///
/// Activations are channels-last, (N, H, W, C). Field names are the state-dict prefixes of pytorch-fid's
/// <c>FIDInceptionA/C/E</c> port (<c>Mixed_6d.branch1x1.conv.weight</c>, …), so loading is a name mapping.
/// Input: (N, 299, 299, 3) already resized and normalised (ADM: TF1 bilinear resize, then (x − 128) / 128).
/// Outputs per image: <c>pool</c> (2048, TF <c>pool_3:0</c>), <c>spatial</c> (2023 = 17·17·7, TF
/// <c>mixed_6/conv:0</c>: Mixed_6d.branch1x1 after BN and ReLU, channels 0..6, flattened (h, w, c)) and
/// <c>logits</c> (1008 = pool · fc.weightᵀ without fc.bias, TF <c>softmax/logits/MatMul</c>, what ADM's Inception
/// Score uses).
/// </summary>
public sealed class FidInceptionV3 : IDisposable
{
    public const int InputSize = 299;
    public const int PoolFeatures = 2048;
    public const int SpatialChannels = 7;
    public const int SpatialFeatures = 17 * 17 * SpatialChannels; // 2023
    public const int Classes = 1008;
    public const double BatchNormEps = 0.001;

#pragma warning disable IDE1006 // names follow the state dict
    // stem: 299 → 149 → 147 → 147 → (max pool) 73 → 73 → 71 → (max pool) 35
    private readonly BasicConv2d Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3;
    private readonly InceptionA Mixed_5b, Mixed_5c, Mixed_5d;   // 35×35: 256, 288, 288 channels
    private readonly InceptionB Mixed_6a;                       // → 17×17×768
    private readonly InceptionC Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e;
    private readonly InceptionD Mixed_7a;                       // → 8×8×1280
    private readonly InceptionE Mixed_7b, Mixed_7c;             // 8×8×2048
    private readonly Tensor fc_weight;                          // (1008, 2048); fc.bias is read but unused
#pragma warning restore IDE1006

    private readonly IBackend _backend;

    private FidInceptionV3(StateDictReader w, IBackend backend)
    {
        _backend = backend;
        var b = backend;
        Conv2d_1a_3x3 = new BasicConv2d(w, b, "Conv2d_1a_3x3", 3, 32, 3, 3, stride: 2);
        Conv2d_2a_3x3 = new BasicConv2d(w, b, "Conv2d_2a_3x3", 32, 32, 3, 3);
        Conv2d_2b_3x3 = new BasicConv2d(w, b, "Conv2d_2b_3x3", 32, 64, 3, 3, padH: 1, padW: 1);
        Conv2d_3b_1x1 = new BasicConv2d(w, b, "Conv2d_3b_1x1", 64, 80, 1, 1);
        Conv2d_4a_3x3 = new BasicConv2d(w, b, "Conv2d_4a_3x3", 80, 192, 3, 3);
        Mixed_5b = new InceptionA(w, b, "Mixed_5b", 192, poolFeatures: 32);
        Mixed_5c = new InceptionA(w, b, "Mixed_5c", 256, poolFeatures: 64);
        Mixed_5d = new InceptionA(w, b, "Mixed_5d", 288, poolFeatures: 64);
        Mixed_6a = new InceptionB(w, b, "Mixed_6a", 288);
        Mixed_6b = new InceptionC(w, b, "Mixed_6b", 768, c7: 128);
        Mixed_6c = new InceptionC(w, b, "Mixed_6c", 768, c7: 160);
        Mixed_6d = new InceptionC(w, b, "Mixed_6d", 768, c7: 160);
        Mixed_6e = new InceptionC(w, b, "Mixed_6e", 768, c7: 192);
        Mixed_7a = new InceptionD(w, b, "Mixed_7a", 768);
        Mixed_7b = new InceptionE(w, b, "Mixed_7b", 1280, maxPoolBranch: false);
        Mixed_7c = new InceptionE(w, b, "Mixed_7c", 2048, maxPoolBranch: true);
        fc_weight = b.FromHost(w.Read("fc.weight", Classes, PoolFeatures), Classes, PoolFeatures);
        w.Read("fc.bias", Classes); // ADM's Inception Score drops the bias; the key must still be there
        w.EnsureAllUsed();
    }

    /// <summary>
    /// Loads the weights from a <c>torch.save</c> file (zip or legacy format) holding pytorch-fid's state dict
    /// (<c>pt_inception-2015-12-05-6726825d.pth</c> or a file with the same keys). Loading is strict: a missing,
    /// unexpected or misshapen key raises <see cref="TensorFileException"/> naming the file, the key and the shapes.
    /// </summary>
    public static FidInceptionV3 Load(string path, IBackend backend)
        => StateDictReader.FromCheckpoint(path, stateDict => FromStateDict(stateDict, path, backend));

    /// <summary>Builds the network from state-dict tensors; <paramref name="source"/> names them in error messages.</summary>
    public static FidInceptionV3 FromStateDict(IReadOnlyDictionary<string, StoredTensor> stateDict, string source, IBackend backend)
        => new(new StateDictReader(stateDict, source), backend);

    /// <summary>
    /// Runs the network on <paramref name="images"/> (N, 299, 299, 3), preprocessed. The caller owns and disposes
    /// the returned tensors: pool (N, 2048), spatial (N, 2023), logits (N, 1008).
    /// </summary>
    public InceptionOutputs Forward(Tensor images)
    {
        if (images.Rank != 4 || images.Dim(1) != InputSize || images.Dim(2) != InputSize || images.Dim(3) != 3)
            throw new ArgumentException($"FID Inception takes (N, {InputSize}, {InputSize}, 3) images, got {images}");
        int n = images.Dim(0);

        var x = Conv2d_1a_3x3.Forward(images);                     // (N, 149, 149, 32)
        x = x.Then(Conv2d_2a_3x3.Forward);                         // (N, 147, 147, 32)
        x = x.Then(Conv2d_2b_3x3.Forward);                         // (N, 147, 147, 64)
        x = x.Then(t => MaxPool(_backend, t, 3, 2));               // (N, 73, 73, 64)
        x = x.Then(Conv2d_3b_1x1.Forward);                         // (N, 73, 73, 80)
        x = x.Then(Conv2d_4a_3x3.Forward);                         // (N, 71, 71, 192)
        x = x.Then(t => MaxPool(_backend, t, 3, 2));               // (N, 35, 35, 192)
        x = x.Then(Mixed_5b.Forward);                              // (N, 35, 35, 256)
        x = x.Then(Mixed_5c.Forward);                              // (N, 35, 35, 288)
        x = x.Then(Mixed_5d.Forward);                              // (N, 35, 35, 288)
        x = x.Then(Mixed_6a.Forward);                              // (N, 17, 17, 768)
        x = x.Then(Mixed_6b.Forward);
        x = x.Then(Mixed_6c.Forward);
        x = x.Then(Mixed_6d.Forward);

        // sFID tap: Mixed_6d.branch1x1 (post-ReLU) is channels 0..191 of Mixed_6d's output; keep channels 0..6.
        var spatial = _backend.Empty(n, 17, 17, SpatialChannels);
        _backend.CopyChannels(x, 0, SpatialChannels, spatial, 0);

        x = x.Then(Mixed_6e.Forward);                              // (N, 17, 17, 768)
        x = x.Then(Mixed_7a.Forward);                              // (N, 8, 8, 1280)
        x = x.Then(Mixed_7b.Forward);                              // (N, 8, 8, 2048)
        x = x.Then(Mixed_7c.Forward);                              // (N, 8, 8, 2048)

        var pool = _backend.Empty(n, PoolFeatures);
        _backend.GlobalAvgPool(x, pool);                           // (N, 2048)
        x.Dispose();
        var logits = _backend.Empty(n, Classes);
        _backend.Gemm(pool, false, fc_weight, true, logits);       // (N, 1008) = pool · fc.weightᵀ, no bias

        var flat = spatial.Reshape(n, SpatialFeatures);            // (h, w, c) order, as ADM flattens NHWC
        spatial.Dispose();
        return new InceptionOutputs(pool, flat, logits);
    }

    /// <summary>
    /// Convenience for host arrays: runs <paramref name="count"/> preprocessed images (C order, (N, 299, 299, 3))
    /// and returns the features as host arrays.
    /// </summary>
    public InceptionFeatures Run(ReadOnlySpan<float> imagesNhwc, int count)
    {
        using var input = _backend.FromHost(imagesNhwc, count, InputSize, InputSize, 3);
        using var outputs = Forward(input);
        return new InceptionFeatures(count, outputs.Pool.ToArray(), outputs.Spatial.ToArray(), outputs.Logits.ToArray());
    }

    /// <summary>
    /// Runs <paramref name="count"/> images of any size, given as float 0..255 ((N, H, W, 3), C order): uploaded as they
    /// are, resized and normalised on the backend by <paramref name="preprocessing"/>'s
    /// <see cref="InceptionPreprocessing.Spec"/>, then the network; returns the features as host arrays.
    /// </summary>
    public InceptionFeatures RunImages(ReadOnlySpan<float> images, int count, int height, int width, InceptionPreprocessing preprocessing)
    {
        using var raw = _backend.FromHost(images, count, height, width, 3);
        using var input = _backend.Empty(count, InputSize, InputSize, 3);
        _backend.ResizeBilinear(raw, preprocessing.Spec(height, width), input);
        using var outputs = Forward(input);
        return new InceptionFeatures(count, outputs.Pool.ToArray(), outputs.Spatial.ToArray(), outputs.Logits.ToArray());
    }

    public void Dispose()
    {
        foreach (var layer in new IDisposable[] { Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3,
                     Mixed_5b, Mixed_5c, Mixed_5d, Mixed_6a, Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e, Mixed_7a, Mixed_7b, Mixed_7c, fc_weight })
            layer.Dispose();
    }

    // k×k max pool, stride s, no padding: (N, H, W, C) → (N, (H − k) / s + 1, …, C)
    private static Tensor MaxPool(IBackend backend, Tensor x, int k, int s)
    {
        int oh = Conv2dParams.OutputSize(x.Dim(1), k, s, 0), ow = Conv2dParams.OutputSize(x.Dim(2), k, s, 0);
        var y = backend.Empty(x.Dim(0), oh, ow, x.Dim(3));
        backend.MaxPool2d(x, k, s, 0, y);
        return y;
    }

    /// <summary>conv (no bias) → BatchNorm (folded into the conv at load time) → ReLU.</summary>
    private sealed class BasicConv2d : IDisposable
    {
        private readonly IBackend _backend;
        private readonly Tensor _weight; // packed by the backend
        private readonly Tensor _bias;   // (Cout): BatchNorm's shift after folding
        private readonly Conv2dParams _p;
        private readonly int _kh, _kw;

        /// <summary>Reads <c>{name}.conv.weight</c> (Cout, Cin, KH, KW) and <c>{name}.bn.{weight,bias,running_mean,running_var}</c> (Cout).</summary>
        public BasicConv2d(StateDictReader w, IBackend backend, string name, int inChannels, int outChannels, int kh, int kw,
            int stride = 1, int padH = 0, int padW = 0)
        {
            _backend = backend;
            _kh = kh;
            _kw = kw;
            OutChannels = outChannels;
            _p = new Conv2dParams(stride, stride, padH, padW, Relu: true);
            var conv = w.Read($"{name}.conv.weight", outChannels, inChannels, kh, kw);
            var gamma = w.Read($"{name}.bn.weight", outChannels);
            var beta = w.Read($"{name}.bn.bias", outChannels);
            var mean = w.Read($"{name}.bn.running_mean", outChannels);
            var variance = w.Read($"{name}.bn.running_var", outChannels);
            var (folded, bias) = BatchNormFolding.FoldIntoConv(conv, outChannels, gamma, beta, mean, variance, BatchNormEps);
            _weight = backend.PackConv2dWeight(folded, outChannels, inChannels, kh, kw);
            _bias = backend.FromHost(bias, outChannels);
        }

        public int OutChannels { get; }

        /// <summary>x: (N, H, W, Cin) → new (N, OH, OW, Cout).</summary>
        public Tensor Forward(Tensor x)
        {
            var y = _backend.Empty(x.Dim(0), Conv2dParams.OutputSize(x.Dim(1), _kh, _p.StrideH, _p.PadH),
                Conv2dParams.OutputSize(x.Dim(2), _kw, _p.StrideW, _p.PadW), OutChannels);
            _backend.Conv2d(x, _weight, _bias, _p, y);
            return y;
        }

        /// <summary>Writes into channels [offset, offset + Cout) of <paramref name="destination"/> (a block's concatenated output).</summary>
        public void ForwardInto(Tensor x, Tensor destination, int offset) => _backend.Conv2d(x, _weight, _bias, _p, destination, 0, offset);

        public void Dispose()
        {
            _weight.Dispose();
            _bias.Dispose();
        }
    }

    /// <summary>Base of the Inception blocks: owns its convolutions; branches write into one concatenated output.</summary>
    private abstract class Block(IBackend backend) : IDisposable
    {
        protected IBackend Backend { get; } = backend;

        protected List<BasicConv2d> Convs { get; } = [];

        protected BasicConv2d Conv(StateDictReader w, string name, int cin, int cout, int kh, int kw, int stride = 1, int padH = 0, int padW = 0)
        {
            var c = new BasicConv2d(w, Backend, name, cin, cout, kh, kw, stride, padH, padW);
            Convs.Add(c);
            return c;
        }

        public abstract Tensor Forward(Tensor x);

        /// <summary>Runs <paramref name="convs"/> one after another on a fresh input; the last one writes into the block output.</summary>
        protected void Chain(Tensor x, Tensor output, int offset, params BasicConv2d[] convs)
        {
            var t = x;
            for (int i = 0; i < convs.Length - 1; i++)
            {
                var next = convs[i].Forward(t);
                if (!ReferenceEquals(t, x)) t.Dispose();
                t = next;
            }
            convs[^1].ForwardInto(t, output, offset);
            if (!ReferenceEquals(t, x)) t.Dispose();
        }

        // 3×3 average pool, stride 1, padding 1, padded positions not counted (count_include_pad=False).
        protected Tensor AvgPool3x3(Tensor x)
        {
            var y = Backend.Empty(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3));
            Backend.AvgPool2d(x, 3, 1, 1, countIncludePad: false, y);
            return y;
        }

        protected Tensor Output(Tensor x, int h, int w, int channels) => Backend.Empty(x.Dim(0), h, w, channels);

        public void Dispose()
        {
            foreach (var c in Convs) c.Dispose();
        }
    }

    /// <summary>Mixed_5b/5c/5d (35×35): 1×1 | 1×1 → 5×5 | 1×1 → 3×3 → 3×3 | avg pool → 1×1. Output 64 + 64 + 96 + pool.</summary>
    private sealed class InceptionA : Block
    {
#pragma warning disable IDE1006
        private readonly BasicConv2d branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool;
#pragma warning restore IDE1006

        public InceptionA(StateDictReader w, IBackend b, string name, int cin, int poolFeatures) : base(b)
        {
            branch1x1 = Conv(w, $"{name}.branch1x1", cin, 64, 1, 1);
            branch5x5_1 = Conv(w, $"{name}.branch5x5_1", cin, 48, 1, 1);
            branch5x5_2 = Conv(w, $"{name}.branch5x5_2", 48, 64, 5, 5, padH: 2, padW: 2);
            branch3x3dbl_1 = Conv(w, $"{name}.branch3x3dbl_1", cin, 64, 1, 1);
            branch3x3dbl_2 = Conv(w, $"{name}.branch3x3dbl_2", 64, 96, 3, 3, padH: 1, padW: 1);
            branch3x3dbl_3 = Conv(w, $"{name}.branch3x3dbl_3", 96, 96, 3, 3, padH: 1, padW: 1);
            branch_pool = Conv(w, $"{name}.branch_pool", cin, poolFeatures, 1, 1);
        }

        public override Tensor Forward(Tensor x)
        {
            var y = Output(x, x.Dim(1), x.Dim(2), 224 + branch_pool.OutChannels);
            Chain(x, y, 0, branch1x1);
            Chain(x, y, 64, branch5x5_1, branch5x5_2);
            Chain(x, y, 128, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3);
            using (var pooled = AvgPool3x3(x)) branch_pool.ForwardInto(pooled, y, 224);
            return y;
        }
    }

    /// <summary>Mixed_6a (35 → 17): 3×3/2 | 1×1 → 3×3 → 3×3/2 | max pool 3×3/2. Output 384 + 96 + 288 = 768.</summary>
    private sealed class InceptionB : Block
    {
#pragma warning disable IDE1006
        private readonly BasicConv2d branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;
#pragma warning restore IDE1006
        private readonly int _cin;

        public InceptionB(StateDictReader w, IBackend b, string name, int cin) : base(b)
        {
            _cin = cin;
            branch3x3 = Conv(w, $"{name}.branch3x3", cin, 384, 3, 3, stride: 2);
            branch3x3dbl_1 = Conv(w, $"{name}.branch3x3dbl_1", cin, 64, 1, 1);
            branch3x3dbl_2 = Conv(w, $"{name}.branch3x3dbl_2", 64, 96, 3, 3, padH: 1, padW: 1);
            branch3x3dbl_3 = Conv(w, $"{name}.branch3x3dbl_3", 96, 96, 3, 3, stride: 2);
        }

        public override Tensor Forward(Tensor x)
        {
            int oh = Conv2dParams.OutputSize(x.Dim(1), 3, 2, 0), ow = Conv2dParams.OutputSize(x.Dim(2), 3, 2, 0);
            var y = Output(x, oh, ow, 384 + 96 + _cin);
            Chain(x, y, 0, branch3x3);
            Chain(x, y, 384, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3);
            Backend.MaxPool2d(x, 3, 2, 0, y, 480);
            return y;
        }
    }

    /// <summary>
    /// Mixed_6b..6e (17×17): 1×1 | 1×1 → 1×7 → 7×1 | 1×1 → 7×1 → 1×7 → 7×1 → 1×7 | avg pool → 1×1.
    /// Output 4 × 192 = 768; channels 0..191 are branch1x1 (Mixed_6d's is ADM's sFID tap).
    /// </summary>
    private sealed class InceptionC : Block
    {
#pragma warning disable IDE1006
        private readonly BasicConv2d branch1x1, branch7x7_1, branch7x7_2, branch7x7_3,
            branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;
#pragma warning restore IDE1006

        public InceptionC(StateDictReader w, IBackend b, string name, int cin, int c7) : base(b)
        {
            branch1x1 = Conv(w, $"{name}.branch1x1", cin, 192, 1, 1);
            branch7x7_1 = Conv(w, $"{name}.branch7x7_1", cin, c7, 1, 1);
            branch7x7_2 = Conv(w, $"{name}.branch7x7_2", c7, c7, 1, 7, padW: 3);
            branch7x7_3 = Conv(w, $"{name}.branch7x7_3", c7, 192, 7, 1, padH: 3);
            branch7x7dbl_1 = Conv(w, $"{name}.branch7x7dbl_1", cin, c7, 1, 1);
            branch7x7dbl_2 = Conv(w, $"{name}.branch7x7dbl_2", c7, c7, 7, 1, padH: 3);
            branch7x7dbl_3 = Conv(w, $"{name}.branch7x7dbl_3", c7, c7, 1, 7, padW: 3);
            branch7x7dbl_4 = Conv(w, $"{name}.branch7x7dbl_4", c7, c7, 7, 1, padH: 3);
            branch7x7dbl_5 = Conv(w, $"{name}.branch7x7dbl_5", c7, 192, 1, 7, padW: 3);
            branch_pool = Conv(w, $"{name}.branch_pool", cin, 192, 1, 1);
        }

        public override Tensor Forward(Tensor x)
        {
            var y = Output(x, x.Dim(1), x.Dim(2), 768);
            Chain(x, y, 0, branch1x1);
            Chain(x, y, 192, branch7x7_1, branch7x7_2, branch7x7_3);
            Chain(x, y, 384, branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5);
            using (var pooled = AvgPool3x3(x)) branch_pool.ForwardInto(pooled, y, 576);
            return y;
        }
    }

    /// <summary>Mixed_7a (17 → 8): 1×1 → 3×3/2 | 1×1 → 1×7 → 7×1 → 3×3/2 | max pool 3×3/2. Output 320 + 192 + 768 = 1280.</summary>
    private sealed class InceptionD : Block
    {
#pragma warning disable IDE1006
        private readonly BasicConv2d branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;
#pragma warning restore IDE1006
        private readonly int _cin;

        public InceptionD(StateDictReader w, IBackend b, string name, int cin) : base(b)
        {
            _cin = cin;
            branch3x3_1 = Conv(w, $"{name}.branch3x3_1", cin, 192, 1, 1);
            branch3x3_2 = Conv(w, $"{name}.branch3x3_2", 192, 320, 3, 3, stride: 2);
            branch7x7x3_1 = Conv(w, $"{name}.branch7x7x3_1", cin, 192, 1, 1);
            branch7x7x3_2 = Conv(w, $"{name}.branch7x7x3_2", 192, 192, 1, 7, padW: 3);
            branch7x7x3_3 = Conv(w, $"{name}.branch7x7x3_3", 192, 192, 7, 1, padH: 3);
            branch7x7x3_4 = Conv(w, $"{name}.branch7x7x3_4", 192, 192, 3, 3, stride: 2);
        }

        public override Tensor Forward(Tensor x)
        {
            int oh = Conv2dParams.OutputSize(x.Dim(1), 3, 2, 0), ow = Conv2dParams.OutputSize(x.Dim(2), 3, 2, 0);
            var y = Output(x, oh, ow, 320 + 192 + _cin);
            Chain(x, y, 0, branch3x3_1, branch3x3_2);
            Chain(x, y, 320, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4);
            Backend.MaxPool2d(x, 3, 2, 0, y, 512);
            return y;
        }
    }

    /// <summary>
    /// Mixed_7b/7c (8×8): 1×1 | 1×1 → (1×3, 3×1) | 1×1 → 3×3 → (1×3, 3×1) | pool → 1×1, where the pool is the
    /// padding-excluding 3×3 average in Mixed_7b and a 3×3 max pool in Mixed_7c (as in the TF graph).
    /// Output 320 + 768 + 768 + 192 = 2048.
    /// </summary>
    private sealed class InceptionE : Block
    {
#pragma warning disable IDE1006
        private readonly BasicConv2d branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b,
            branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;
#pragma warning restore IDE1006
        private readonly bool _maxPoolBranch;

        public InceptionE(StateDictReader w, IBackend b, string name, int cin, bool maxPoolBranch) : base(b)
        {
            _maxPoolBranch = maxPoolBranch;
            branch1x1 = Conv(w, $"{name}.branch1x1", cin, 320, 1, 1);
            branch3x3_1 = Conv(w, $"{name}.branch3x3_1", cin, 384, 1, 1);
            branch3x3_2a = Conv(w, $"{name}.branch3x3_2a", 384, 384, 1, 3, padW: 1);
            branch3x3_2b = Conv(w, $"{name}.branch3x3_2b", 384, 384, 3, 1, padH: 1);
            branch3x3dbl_1 = Conv(w, $"{name}.branch3x3dbl_1", cin, 448, 1, 1);
            branch3x3dbl_2 = Conv(w, $"{name}.branch3x3dbl_2", 448, 384, 3, 3, padH: 1, padW: 1);
            branch3x3dbl_3a = Conv(w, $"{name}.branch3x3dbl_3a", 384, 384, 1, 3, padW: 1);
            branch3x3dbl_3b = Conv(w, $"{name}.branch3x3dbl_3b", 384, 384, 3, 1, padH: 1);
            branch_pool = Conv(w, $"{name}.branch_pool", cin, 192, 1, 1);
        }

        public override Tensor Forward(Tensor x)
        {
            var y = Output(x, x.Dim(1), x.Dim(2), 2048);
            Chain(x, y, 0, branch1x1);
            using (var t = branch3x3_1.Forward(x))
            {
                branch3x3_2a.ForwardInto(t, y, 320);
                branch3x3_2b.ForwardInto(t, y, 704);
            }
            using (var t1 = branch3x3dbl_1.Forward(x))
            using (var t2 = branch3x3dbl_2.Forward(t1))
            {
                branch3x3dbl_3a.ForwardInto(t2, y, 1088);
                branch3x3dbl_3b.ForwardInto(t2, y, 1472);
            }
            using (var pooled = _maxPoolBranch ? MaxPool3x3Same(x) : AvgPool3x3(x)) branch_pool.ForwardInto(pooled, y, 1856);
            return y;
        }

        // 3×3 max pool, stride 1, padding 1 (padded positions never win).
        private Tensor MaxPool3x3Same(Tensor x)
        {
            var y = Backend.Empty(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3));
            Backend.MaxPool2d(x, 3, 1, 1, y);
            return y;
        }
    }
}

/// <summary>The network's outputs as backend tensors; dispose when done.</summary>
/// <param name="Pool">(N, 2048) average pool after Mixed_7c.</param>
/// <param name="Spatial">(N, 2023) Mixed_6d.branch1x1 channels 0..6, flattened (h, w, c).</param>
/// <param name="Logits">(N, 1008) pool · fc.weightᵀ, no bias.</param>
public sealed record InceptionOutputs(Tensor Pool, Tensor Spatial, Tensor Logits) : IDisposable
{
    public void Dispose()
    {
        Pool.Dispose();
        Spatial.Dispose();
        Logits.Dispose();
    }
}

