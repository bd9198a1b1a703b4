namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>How one bilinear flavour builds its taps and combines two samples (the order of float32 operations matters).</summary>
internal interface IBilinearKernel
{
    static abstract BilinearTaps Taps(int inputSize, int outputSize);

    /// <summary>Interpolates along a row between <paramref name="left"/> and <paramref name="right"/>.</summary>
    static abstract float Horizontal(float left, float right, float lowWeight, float highWeight);

    /// <summary>Interpolates whole rows: <paramref name="destination"/>[j] from <paramref name="top"/>[j] and <paramref name="bottom"/>[j].</summary>
    static abstract void Vertical(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, float lowWeight, float highWeight, Span<float> destination);
}
