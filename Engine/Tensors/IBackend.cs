namespace DyDiT.Eval.Engine.Tensors;

/// <summary>
/// The tensor operations model code may use. Implemented by the CPU backend (TensorPrimitives + OpenBLAS) and the
/// CUDA backend (ILGPU kernels + cuBLAS; also run on ILGPU's CPU accelerator as "ilgpu-cpu"); models are written
/// against this interface only and get a backend from <c>Backends.Create</c>. Float64 host linear algebra for the
/// evaluator's statistics is not here: it is <c>HostLinearAlgebra</c>, whatever the device.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>"cpu", "cuda:N" or "ilgpu-cpu".</summary>
    string Name { get; }

    /// <summary>Threads the backend's kernels use.</summary>
    int Threads { get; }

    /// <summary>A zero-filled tensor.</summary>
    Tensor Zeros(params int[] shape);

    /// <summary>A tensor whose contents are unspecified, for outputs that a kernel overwrites completely.</summary>
    Tensor Empty(params int[] shape);

    /// <summary>A tensor holding a copy of <paramref name="values"/> (C order).</summary>
    Tensor FromHost(ReadOnlySpan<float> values, params int[] shape);

    void Upload(ReadOnlySpan<float> values, Tensor destination);

    void Download(Tensor source, Span<float> destination);

    // ---- matrix products ----

    /// <summary>
    /// C = alpha · op(A) · op(B) + beta · C for row-major matrices; op transposes when asked.
    /// A: (M, K) or (K, M) when transposed, B: (K, N) or (N, K), C: (M, N).
    /// </summary>
    void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// Strided batched GEMM: for each i in [0, batch): C_i = alpha · op(A_i) · op(B_i) + beta · C_i, where A_i starts
    /// at element i·strideA of <paramref name="a"/> (likewise B, C). A stride of 0 reuses one matrix for all.
    /// </summary>
    void BatchedGemm(int batch, int m, int n, int k,
        Tensor a, long strideA, bool transposeA,
        Tensor b, long strideB, bool transposeB,
        Tensor c, long strideC, float alpha = 1f, float beta = 0f);

    // ---- element-wise (shapes must match exactly; in-place allowed when destination is an input) ----

    void Add(Tensor x, Tensor y, Tensor destination);

    void Multiply(Tensor x, Tensor y, Tensor destination);

    /// <summary>destination = x · scale + shift (scalars).</summary>
    void ScaleShift(Tensor x, float scale, float shift, Tensor destination);

    void Silu(Tensor x, Tensor destination);

    /// <summary>GELU with the tanh approximation (as DiT's MLP uses it).</summary>
    void GeluTanh(Tensor x, Tensor destination);

    /// <summary>Softmax over the last dimension.</summary>
    void SoftmaxLastDim(Tensor x, Tensor destination);

    // ---- convolutional networks: activations are channels-last, x: (N, H, W, C) ----
    // "Channel windows": a kernel may read channels [offset, offset + count) of a wider input and write into
    // channels [offset, offset + count) of a wider destination, so that branches of an Inception block write
    // straight into the block's concatenated output and read their share of a merged 1×1 convolution.

    /// <summary>
    /// Repacks a PyTorch convolution weight (Cout, Cin, KH, KW) into this backend's private layout for
    /// <see cref="Conv2d"/>. The returned tensor is only meant to be passed to <see cref="Conv2d"/>.
    /// </summary>
    Tensor PackConv2dWeight(ReadOnlySpan<float> weightOihw, int outChannels, int inChannels, int kernelH, int kernelW);

    /// <summary>
    /// 2-D convolution (cross-correlation, as PyTorch) with zero padding, optional bias and ReLU:
    /// y[n, oh, ow, yOff + co] = act(bias[co] + Σ_{kh, kw, ci} x[n, oh·sh + kh − ph, ow·sw + kw − pw, xOff + ci] · w[co, ci, kh, kw]).
    /// x: (N, H, W, Cx) with Cx ≥ xOff + Cin; destination: (N, OH, OW, Cy) with Cy ≥ yOff + Cout,
    /// OH = (H + 2·ph − KH) / sh + 1 (likewise OW). Channels of the destination outside the window are untouched.
    /// </summary>
    void Conv2d(Tensor x, Tensor packedWeight, Tensor? bias, Conv2dParams p, Tensor destination,
        int sourceChannelOffset = 0, int destinationChannelOffset = 0);

    /// <summary>x (…, C) += bias (C) per row, then ReLU when asked; in place allowed.</summary>
    void BiasActivation(Tensor x, Tensor bias, bool relu, Tensor destination);

    /// <summary>
    /// Max pool over k×k windows with stride s and padding p (padded positions never win):
    /// x (N, H, W, C) → destination (N, OH, OW, Cy), written to channels [yOff, yOff + C).
    /// </summary>
    void MaxPool2d(Tensor x, int kernel, int stride, int padding, Tensor destination, int destinationChannelOffset = 0);

    /// <summary>
    /// Average pool over k×k windows with stride s and zero padding p. With <paramref name="countIncludePad"/> false
    /// (TensorFlow's behaviour) the divisor is the number of window positions inside the input; with true it is
    /// PyTorch's default divisor (the window clipped to the padded input).
    /// x (N, H, W, C) → destination (N, OH, OW, Cy), written to channels [yOff, yOff + C).
    /// </summary>
    void AvgPool2d(Tensor x, int kernel, int stride, int padding, bool countIncludePad, Tensor destination, int destinationChannelOffset = 0);

    /// <summary>Mean over H and W: x (N, H, W, C) → destination (N, C).</summary>
    void GlobalAvgPool(Tensor x, Tensor destination);

    /// <summary>
    /// Copies channels [srcOff, srcOff + count) of source (N, H, W, Cs) into channels [dstOff, dstOff + count) of
    /// destination (N, H, W, Cd); the leading dimensions must match.
    /// </summary>
    void CopyChannels(Tensor source, int sourceChannelOffset, int count, Tensor destination, int destinationChannelOffset);

    /// <summary>Concatenates (N, H, W, C_i) tensors along the last dimension into destination (N, H, W, ΣC_i).</summary>
    void ConcatChannels(IReadOnlyList<Tensor> parts, Tensor destination);

    /// <summary>
    /// Separable bilinear resize with the pixel mapping of <paramref name="spec"/> (see <see cref="BilinearResizeSpec"/>):
    /// x (N, H, W, C) → destination (N, OH, OW, C). With v' = v / divisor and h(r, j) = blend(v'[r, Low_x[j]],
    /// v'[r, High_x[j]], the column weights of j), destination[n, i, j] = map(blend(h(Low_y[i], j), h(High_y[i], j), the row
    /// weights of i)). Each value is computed by the same float32 expression whatever the backend splits.
    /// </summary>
    void ResizeBilinear(Tensor x, BilinearResizeSpec spec, Tensor destination);

    // ---- VAE decoder ----

    /// <summary>
    /// Group normalisation (torch.nn.GroupNorm) over channels-last x (N, …, C): the C channels form
    /// <paramref name="groups"/> groups of C / groups consecutive channels; each (sample, group) is normalised over
    /// all its values with the biased variance and <paramref name="eps"/>, then scaled by weight (C) and shifted by
    /// bias (C) when given. In place allowed.
    /// </summary>
    void GroupNorm(Tensor x, int groups, float eps, Tensor? weight, Tensor? bias, Tensor destination);

    /// <summary>Nearest-neighbour 2× upsampling: x (N, H, W, C) → destination (N, 2H, 2W, C), y[n, i, j] = x[n, i / 2, j / 2].</summary>
    void UpsampleNearest2x(Tensor x, Tensor destination);

    /// <summary>
    /// Swaps the last two dimensions: x (…, R, C) → destination (…, C, R). With reshaped views this converts
    /// NCHW (N, C, H·W) to NHWC (N, H·W, C) and back.
    /// </summary>
    void TransposeLastTwo(Tensor x, Tensor destination);

    // ---- transformer (DiT) ----
    // Token activations are (B, T, C): B samples, T tokens, C channels. Per-sample vectors are (B, C).

    /// <summary>
    /// LayerNorm over the last dimension without affine parameters (torch.nn.LayerNorm(C, elementwise_affine=False)):
    /// y = (x − mean) / √(var + eps), biased variance, per row of x (…, C). In place allowed.
    /// </summary>
    void LayerNorm(Tensor x, float eps, Tensor destination);

    /// <summary>adaLN modulation: y[b, t, :] = x[b, t, :] · (1 + scale[b, :]) + shift[b, :]. x: (B, T, C); shift, scale: (B, C). In place allowed.</summary>
    void Modulate(Tensor x, Tensor shift, Tensor scale, Tensor destination);

    /// <summary>Gated residual: y[b, t, :] = x[b, t, :] + gate[b, :] · r[b, t, :]. x, r: (B, T, C); gate: (B, C). In place allowed (destination = x).</summary>
    void GatedAdd(Tensor x, Tensor gate, Tensor residual, Tensor destination);

    /// <summary>
    /// Multi-head scaled dot-product self-attention without masking: qkv (B, T, 3·C) holds q, k, v side by side, each
    /// split into <paramref name="heads"/> heads of C / heads channels (channel s·C + h·hd + e = part s, head h, dim e);
    /// destination (B, T, C) gets softmax(q·kᵀ / √hd)·v per head, heads concatenated (channel h·hd + e).
    /// </summary>
    void MultiHeadAttention(Tensor qkv, int heads, Tensor destination);

    /// <summary>
    /// Cuts an image into non-overlapping p×p patches: x (B, C, H, W) → destination (B, (H/p)·(W/p), C·p·p), token
    /// m = hh·(W/p) + ww, feature (c·p + i)·p + j = x[b, c, hh·p + i, ww·p + j] (the layout of a Conv2d weight
    /// (D, C, p, p), so a stride-p convolution becomes one GEMM).
    /// </summary>
    void Patchify(Tensor x, int patch, Tensor destination);

    /// <summary>
    /// DiT's unpatchify: x (B, T, p·p·C) with T = (H/p)·(W/p) → destination (B, C, H, W), where
    /// destination[b, c, hh·p + i, ww·p + j] = x[b, hh·(W/p) + ww, (i·p + j)·C + c] (channel fastest in a token).
    /// </summary>
    void Unpatchify(Tensor x, int patch, Tensor destination);

    /// <summary>
    /// Classifier-free guidance as DiT's forward_with_cfg mixes it: x (2n, C, …) holds the conditional outputs in rows
    /// [0, n) and the unconditional ones in rows [n, 2n). For channels [0, guidedChannels) both halves become
    /// u + scale·(c − u); the other channels are copied unchanged. In place allowed.
    /// </summary>
    void ClassifierFreeGuidance(Tensor x, int guidedChannels, float scale, Tensor destination);

    // ---- SparseDiT ----
    // FlexDiT (SparseDiT): token pooling to a coarse grid and back, cross-attention between token sets, attention biases.

    /// <summary>
    /// Multi-head scaled dot-product attention whose queries, keys and values are channel windows of (possibly different)
    /// token tensors, with an optional additive bias on the scores. With C = destination.Dim(2) and hd = C / heads:
    /// q[b, i, h·hd + e] = <paramref name="q"/>[b, i, qOff + h·hd + e] (q: (B, N, Cq)), k and v likewise from
    /// <paramref name="kv"/> (B, M, Ckv) at kOff and vOff; per head S = q·kᵀ / √hd + bias[h or 0] (bias: (heads or 1, N, M)),
    /// P = softmax(S) by row, destination[b, i, h·hd + e] = (P·v)[i, e]. Self-attention from packed qkv is
    /// (qkv, 0, qkv, C, 2C); timm-style cross-attention with kv = Linear(D, 2D)(y) is (q, 0, kv, 0, C).
    /// </summary>
    void ScaledDotProductAttention(Tensor q, int queryChannelOffset, Tensor kv, int keyChannelOffset, int valueChannelOffset,
        int heads, Tensor? bias, Tensor destination);

    /// <summary>
    /// torch.nn.AdaptiveAvgPool2d on channels-last images: x (N, H, W, C) → destination (N, OH, OW, C); output row i
    /// averages input rows [⌊i·H / OH⌋, ⌈(i + 1)·H / OH⌉) (bins overlap when OH does not divide H), columns likewise.
    /// </summary>
    void AdaptiveAvgPool2d(Tensor x, Tensor destination);

    /// <summary>
    /// torch.nn.functional.interpolate(mode="nearest", size=(OH, OW)) on channels-last images: x (N, H, W, C) →
    /// destination (N, OH, OW, C), y[n, i, j] = x[n, min(⌊i·s_h⌋, H − 1), min(⌊j·s_w⌋, W − 1)] with the float32 scale
    /// s_h = H / OH (likewise s_w).
    /// </summary>
    void UpsampleNearest(Tensor x, Tensor destination);

    /// <summary>
    /// Gated residual of one vector per sample, broadcast over the tokens: y[b, t, :] = x[b, t, :] + gate[b, :] · r[b, :].
    /// x: (B, T, C); gate, r: (B, C). In place allowed (destination = x).
    /// </summary>
    void GatedAddBroadcast(Tensor x, Tensor gate, Tensor residual, Tensor destination);

    // ---- DyDiT ----
    // Row-wise views of (…, C) tensors: row r is the r-th run of C values. Row and block lists live on the host.

    /// <summary>destination[i, :] = source[rows[i], :]. source (…, C), destination (rows.Length, C) (any shape with that many rows of C).</summary>
    void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination);

    /// <summary>destination[rows[i], :] = source[i, :]; other rows of destination are untouched. Rows must not repeat.</summary>
    void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination);

    /// <summary>
    /// A linear layer computed for some blocks of its outputs only: weight (O, K), bias (O) split into O / blockSize
    /// blocks of consecutive output rows; <paramref name="blocks"/> (strictly increasing) picks them. x (…, K) →
    /// destination (rows, blocks.Length·blockSize) with columns [j·bs, (j+1)·bs) = x·W[blocks[j]·bs + i, :]ᵀ + b[…].
    /// </summary>
    void LinearRowBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination);

    /// <summary>
    /// A linear layer whose input has only some blocks of its K features: x (…, blocks.Length·blockSize) holds input
    /// blocks blocks[0], blocks[1], … side by side (strictly increasing); the missing blocks count as zeros. weight (O, K),
    /// bias (O) → destination (rows, O) = Σ_j x[:, j·bs + i] · W[:, blocks[j]·bs + i] + b.
    /// </summary>
    void LinearColumnBlocks(Tensor x, Tensor weight, Tensor bias, ReadOnlySpan<int> blocks, int blockSize, Tensor destination);
}

/// <summary>Stride and zero padding of a 2-D convolution (the kernel size comes from the packed weight).</summary>
public readonly record struct Conv2dParams(int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0, bool Relu = false)
{
    /// <summary>Output extent of one spatial dimension.</summary>
    public static int OutputSize(int input, int kernel, int stride, int pad) => (input + 2 * pad - kernel) / stride + 1;
}
