using DyDiT.Eval.Engine.Tensors;

namespace DyDiT.Eval.Workers.Networks.Vae;

// The building blocks of the diffusers VAE decoder, channels-last: images are (N, H, W, C).
// Each reads its parameters under the state-dict prefix it is given; every Forward returns a new tensor that the
// caller owns and leaves its input alone.

/// <summary>Conv2d with bias, stride 1, "same" zero padding (k / 2): <c>{name}.weight</c> (Cout, Cin, k, k), <c>{name}.bias</c> (Cout).</summary>
internal sealed class VaeConv : IDisposable
{
    private readonly IBackend _backend;
    private readonly Tensor _weight; // packed for the backend's Conv2d
    private readonly Tensor _bias;
    private readonly Conv2dParams _p;

    public VaeConv(VaeWeights w, IBackend backend, string name, int inChannels, int outChannels, int kernel)
    {
        _backend = backend;
        OutChannels = outChannels;
        _p = new Conv2dParams(PadH: kernel / 2, PadW: kernel / 2);
        _weight = backend.PackConv2dWeight(w.Read($"{name}.weight", outChannels, inChannels, kernel, kernel), outChannels, inChannels, kernel, kernel);
        _bias = backend.FromHost(w.Read($"{name}.bias", outChannels), outChannels);
    }

    public int OutChannels { get; }

    // (N, H, W, Cin) → (N, H, W, Cout)
    public Tensor Forward(Tensor x)
    {
        var y = _backend.Empty(x.Dim(0), x.Dim(1), x.Dim(2), OutChannels);
        _backend.Conv2d(x, _weight, _bias, _p, y);
        return y;
    }

    public void Dispose()
    {
        _weight.Dispose();
        _bias.Dispose();
    }
}

/// <summary>GroupNorm(groups, C, eps = 1e-6, affine): <c>{name}.weight</c>, <c>{name}.bias</c> (C).</summary>
internal sealed class VaeGroupNorm : IDisposable
{
    public const float Eps = 1e-6f;

    private readonly IBackend _backend;
    private readonly Tensor _weight, _bias;
    private readonly int _groups;

    public VaeGroupNorm(VaeWeights w, IBackend backend, string name, int channels, int groups)
    {
        _backend = backend;
        _groups = groups;
        _weight = backend.FromHost(w.Read($"{name}.weight", channels), channels);
        _bias = backend.FromHost(w.Read($"{name}.bias", channels), channels);
    }

    /// <summary>destination = groupnorm(x); the two may be the same tensor.</summary>
    public void Forward(Tensor x, Tensor destination) => _backend.GroupNorm(x, _groups, Eps, _weight, _bias, destination);

    public void Dispose()
    {
        _weight.Dispose();
        _bias.Dispose();
    }
}

/// <summary>nn.Linear with bias: <c>{name}.weight</c> (out, in), <c>{name}.bias</c> (out).</summary>
internal sealed class VaeLinear : IDisposable
{
    private readonly IBackend _backend;
    private readonly Tensor _weight, _bias;
    private readonly int _out;

    public VaeLinear(VaeWeights w, IBackend backend, string name, int inFeatures, int outFeatures)
    {
        _backend = backend;
        _out = outFeatures;
        _weight = backend.FromHost(w.Read($"{name}.weight", outFeatures, inFeatures), outFeatures, inFeatures);
        _bias = backend.FromHost(w.Read($"{name}.bias", outFeatures), outFeatures);
    }

    // (M, in) → (M, out) = x · Wᵀ + b
    public Tensor Forward(Tensor x)
    {
        var y = _backend.Empty(x.Dim(0), _out);
        _backend.Gemm(x, false, _weight, true, y);
        _backend.BiasActivation(y, _bias, relu: false, y);
        return y;
    }

    public void Dispose()
    {
        _weight.Dispose();
        _bias.Dispose();
    }
}

/// <summary>
/// diffusers ResnetBlock2D without a time embedding: h = conv1(silu(norm1(x))), h = conv2(silu(norm2(h))),
/// out = shortcut(x) + h, where the shortcut is a 1×1 <c>conv_shortcut</c> only when the channel count changes.
/// </summary>
internal sealed class VaeResnetBlock : IDisposable
{
#pragma warning disable IDE1006 // names follow the state dict
    private readonly VaeGroupNorm norm1, norm2;
    private readonly VaeConv conv1, conv2;
    private readonly VaeConv? conv_shortcut;
#pragma warning restore IDE1006
    private readonly IBackend _backend;

    public VaeResnetBlock(VaeWeights w, IBackend backend, string name, int inChannels, int outChannels, int groups)
    {
        _backend = backend;
        norm1 = new VaeGroupNorm(w, backend, $"{name}.norm1", inChannels, groups);
        conv1 = new VaeConv(w, backend, $"{name}.conv1", inChannels, outChannels, 3);
        norm2 = new VaeGroupNorm(w, backend, $"{name}.norm2", outChannels, groups);
        conv2 = new VaeConv(w, backend, $"{name}.conv2", outChannels, outChannels, 3);
        if (inChannels != outChannels) conv_shortcut = new VaeConv(w, backend, $"{name}.conv_shortcut", inChannels, outChannels, 1);
    }

    // (N, H, W, Cin) → (N, H, W, Cout)
    public Tensor Forward(Tensor x)
    {
        Tensor h2;
        using (var h = _backend.Empty(x.Shape.ToArray()))
        {
            norm1.Forward(x, h);
            _backend.Silu(h, h);
            h2 = conv1.Forward(h);
        }
        norm2.Forward(h2, h2);
        _backend.Silu(h2, h2);
        var y = conv2.Forward(h2); // dropout is the identity at inference
        h2.Dispose();
        if (conv_shortcut is null)
        {
            _backend.Add(x, y, y);
        }
        else
        {
            using var shortcut = conv_shortcut.Forward(x);
            _backend.Add(shortcut, y, y);
        }
        return y; // output_scale_factor is 1
    }

    public void Dispose()
    {
        norm1.Dispose();
        conv1.Dispose();
        norm2.Dispose();
        conv2.Dispose();
        conv_shortcut?.Dispose();
    }
}

/// <summary>
/// diffusers Attention as the VAE mid block builds it: one head over the H·W positions, dim C.
/// h = group_norm(x) as (N, H·W, C); q, k, v = linear(h); a = softmax(q·kᵀ · C^−½) · v; out = to_out.0(a) + x.
/// Composed of GEMMs and a softmax; the (N, H·W, H·W) score matrix is held at once (4 MiB per image for a 32×32
/// latent, 64 MiB for 64×64).
/// </summary>
internal sealed class VaeAttention : IDisposable
{
#pragma warning disable IDE1006 // names follow the state dict (to_out.0 → to_out)
    private readonly VaeGroupNorm group_norm;
    private readonly VaeLinear to_q, to_k, to_v, to_out;
#pragma warning restore IDE1006
    private readonly IBackend _backend;
    private readonly int _channels;
    private readonly float _scale;

    public VaeAttention(VaeWeights w, IBackend backend, string name, int channels, int groups)
    {
        _backend = backend;
        _channels = channels;
        _scale = (float)Math.Pow(channels, -0.5); // dim_head ** -0.5 with a single head
        group_norm = new VaeGroupNorm(w, backend, $"{name}.group_norm", channels, groups);
        to_q = new VaeLinear(w, backend, $"{name}.to_q", channels, channels);
        to_k = new VaeLinear(w, backend, $"{name}.to_k", channels, channels);
        to_v = new VaeLinear(w, backend, $"{name}.to_v", channels, channels);
        to_out = new VaeLinear(w, backend, $"{name}.to_out.0", channels, channels);
    }

    // (N, H, W, C) → (N, H, W, C)
    public Tensor Forward(Tensor x)
    {
        int n = x.Dim(0), tokens = x.Dim(1) * x.Dim(2), c = _channels;
        Tensor q, k, v;
        using (var h = _backend.Empty(x.Shape.ToArray()))
        using (var rows = h.Reshape(n * tokens, c))               // (N·T, C): one row per position
        {
            group_norm.Forward(x, h);
            q = to_q.Forward(rows);
            k = to_k.Forward(rows);
            v = to_v.Forward(rows);
        }
        using var attended = _backend.Empty(n * tokens, c);
        using (q)
        using (k)
        using (v)
        using (var scores = _backend.Empty(n, tokens, tokens))
        {
            long qkv = (long)tokens * c, square = (long)tokens * tokens;
            _backend.BatchedGemm(n, tokens, tokens, c, q, qkv, false, k, qkv, true, scores, square, alpha: _scale); // q·kᵀ·scale
            _backend.SoftmaxLastDim(scores, scores);
            _backend.BatchedGemm(n, tokens, c, tokens, scores, square, false, v, qkv, false, attended, qkv);          // softmax · v
        }
        using var projected = to_out.Forward(attended);
        var y = projected.Reshape(x.Shape.ToArray());
        _backend.Add(y, x, y); // residual; rescale_output_factor is 1
        return y;
    }

    public void Dispose()
    {
        group_norm.Dispose();
        to_q.Dispose();
        to_k.Dispose();
        to_v.Dispose();
        to_out.Dispose();
    }
}

/// <summary>diffusers Upsample2D with a conv: nearest 2× upsampling, then <c>{name}.conv</c> (3×3).</summary>
internal sealed class VaeUpsampler : IDisposable
{
    private readonly IBackend _backend;
    private readonly VaeConv _conv;

    public VaeUpsampler(VaeWeights w, IBackend backend, string name, int channels)
    {
        _backend = backend;
        _conv = new VaeConv(w, backend, $"{name}.conv", channels, channels, 3);
    }

    // (N, H, W, C) → (N, 2H, 2W, C)
    public Tensor Forward(Tensor x)
    {
        using var up = _backend.Empty(x.Dim(0), 2 * x.Dim(1), 2 * x.Dim(2), x.Dim(3));
        _backend.UpsampleNearest2x(x, up);
        return _conv.Forward(up);
    }

    public void Dispose() => _conv.Dispose();
}
