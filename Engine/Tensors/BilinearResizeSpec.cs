namespace DyDiT.Eval.Engine.Tensors;

/// <summary>
/// One axis of a separable bilinear resize: per output index, the two source indices and their float32 weights, as the
/// caller's reference implementation computed them (TF1's legacy taps, half-pixel taps, …).
/// </summary>
public sealed record ResizeAxis(int InputSize, int[] Low, int[] High, float[] LowWeight, float[] HighWeight)
{
    public int OutputSize => Low.Length;

    internal void Check(string name)
    {
        if (High.Length != Low.Length || LowWeight.Length != Low.Length || HighWeight.Length != Low.Length)
            throw new ArgumentException($"{name} taps: Low, High and the two weights must have one entry per output index");
        foreach (var i in Low) if ((uint)i >= (uint)InputSize) throw new ArgumentException($"{name} tap {i} is outside [0, {InputSize})");
        foreach (var i in High) if ((uint)i >= (uint)InputSize) throw new ArgumentException($"{name} tap {i} is outside [0, {InputSize})");
    }
}

/// <summary>How two samples a, b with weights w_a, w_b are blended; the order of float32 operations is part of the contract.</summary>
public enum BilinearBlend
{
    /// <summary><c>a + (b − a)·w_b</c> (TensorFlow 1's legacy ResizeBilinear; no fused multiply-add).</summary>
    Lerp,

    /// <summary><c>fma(a, w_a, b·w_b)</c> (PyTorch's half-pixel bilinear interpolation as compiled for CPU).</summary>
    FusedWeightedSum,
}

/// <summary>
/// A separable bilinear resize of channels-last images and the pixel mapping around it: each input value v becomes
/// <c>v / InputDivisor</c> (float32 division; skipped when 1), rows are blended along x by <see cref="Columns"/>, then pairs
/// of rows along y by <see cref="Rows"/>, and each result r becomes <c>(r − Subtract)·Multiply</c>, or
/// <c>r·Multiply − Subtract</c> with <see cref="MultiplyFirst"/> (each step one float32 operation).
/// </summary>
public sealed record BilinearResizeSpec(ResizeAxis Rows, ResizeAxis Columns, BilinearBlend Blend, float InputDivisor = 1f,
    float Subtract = 0f, float Multiply = 1f, bool MultiplyFirst = false)
{
    /// <summary>Checks x (N, H, W, C) and destination (N, OH, OW, C) against the taps.</summary>
    internal void Check(Tensor x, Tensor destination)
    {
        Rows.Check("row");
        Columns.Check("column");
        if (x.Rank != 4 || destination.Rank != 4 || x.Dim(0) != destination.Dim(0) || x.Dim(3) != destination.Dim(3)
            || x.Dim(1) != Rows.InputSize || x.Dim(2) != Columns.InputSize
            || destination.Dim(1) != Rows.OutputSize || destination.Dim(2) != Columns.OutputSize)
            throw new ArgumentException($"ResizeBilinear: {x} → {destination} does not fit taps {Rows.InputSize}×{Columns.InputSize} → {Rows.OutputSize}×{Columns.OutputSize} (N, H, W, C)");
    }
}
