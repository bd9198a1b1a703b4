using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;

namespace DyDiT.Eval.Workers.Noise;

/// <summary>
/// Replays noise recorded in an .npz with the layout of the sampling traces (<c>fixtures/diffusion/trace_*.npz</c>):
/// <c>z</c> float32 [n, C, H, W] (x_T of samples 0..n−1), optional <c>y</c> int64 [n] or [2n] (labels; the
/// first n are used), and <c>step_noise</c> float32 [S, M, C, H, W] (the draw of each step, M = n or 2n rows).
/// Sample indices address rows directly.
/// </summary>
public sealed class ReplayNoiseSource : INoiseSource
{
    private readonly float[] _z;
    private readonly long[]? _y;
    private readonly float[] _steps;
    private readonly int _row;

    private ReplayNoiseSource(string path, float[] z, int n, long[]? y, float[] steps, int stepCount, int stepRows, int row)
    {
        Path = path;
        _z = z;
        Count = n;
        _y = y;
        _steps = steps;
        StepCount = stepCount;
        StepRows = stepRows;
        _row = row;
    }

    public string Path { get; }

    /// <summary>Number of recorded samples n.</summary>
    public int Count { get; }

    /// <summary>Number of recorded steps S.</summary>
    public int StepCount { get; }

    /// <summary>Rows per recorded step (n without guidance, 2n with).</summary>
    public int StepRows { get; }

    /// <summary>Values per sample row (C·H·W).</summary>
    public int RowSize => _row;

    public static ReplayNoiseSource Open(string path)
    {
        using var npz = NpzArchive.Open(path);
        foreach (var required in new[] { "z", "step_noise" })
            if (!npz.Contains(required))
                throw new InvalidDataException($"{path}: no array '{required}' (a noise file needs z [n,C,H,W] and step_noise [S,M,C,H,W])");
        var zArray = npz["z"];
        var stepArray = npz["step_noise"];
        if (zArray.Shape.Count < 2)
            throw new InvalidDataException($"{path}: 'z' has shape [{string.Join(",", zArray.Shape)}], expected [n, C, H, W]");
        int n = checked((int)zArray.Shape[0]);
        int row = checked((int)(zArray.ElementCount / Math.Max(n, 1)));
        if (stepArray.Shape.Count != zArray.Shape.Count + 1 || !stepArray.Shape.Skip(2).SequenceEqual(zArray.Shape.Skip(1)))
            throw new InvalidDataException($"{path}: 'step_noise' has shape [{string.Join(",", stepArray.Shape)}], expected [S, M, {string.Join(",", zArray.Shape.Skip(1))}]");
        int stepCount = checked((int)stepArray.Shape[0]);
        int stepRows = checked((int)stepArray.Shape[1]);
        if (stepRows != n && stepRows != 2 * n)
            throw new InvalidDataException($"{path}: 'step_noise' has {stepRows} rows per step for {n} samples; expected {n} or {2 * n}");
        long[]? y = null;
        if (npz.Contains("y"))
        {
            var yArray = npz["y"];
            if (yArray.Shape.Count != 1 || yArray.Shape[0] < n || yArray.DType != DType.Int64)
                throw new InvalidDataException($"{path}: 'y' has shape [{string.Join(",", yArray.Shape)}], ({yArray.DType}), expected int64 [{n}] or [{2 * n}]");
            y = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(yArray.ReadAllBytes()).ToArray();
        }
        return new ReplayNoiseSource(path, zArray.ToFloat32(), n, y, stepArray.ToFloat32(), stepCount, stepRows, row);
    }

    public void InitialLatents(ReadOnlySpan<long> samples, Span<float> destination)
    {
        CheckRow(NoiseShapes.RowSize(destination.Length, samples.Length, "initial latents"));
        for (int r = 0; r < samples.Length; r++)
            _z.AsSpan(checked((int)CheckSample(samples[r])) * _row, _row).CopyTo(destination.Slice(r * _row, _row));
    }

    public void Labels(ReadOnlySpan<long> samples, int numClasses, Span<long> destination)
    {
        if (_y == null) throw new InvalidOperationException($"{Path}: no array 'y', so no labels to replay");
        if (destination.Length != samples.Length)
            throw new ArgumentException($"labels: destination holds {destination.Length} values for {samples.Length} samples");
        for (int r = 0; r < samples.Length; r++)
        {
            long label = _y[CheckSample(samples[r])];
            if (label < 0 || label >= numClasses)
                throw new InvalidDataException($"{Path}: recorded label {label} of sample {samples[r]} is outside [0, {numClasses})");
            destination[r] = label;
        }
    }

    public void StepNoise(ReadOnlySpan<long> samples, int step, bool guidanceBatch, Span<float> destination)
    {
        int batch = samples.Length;
        CheckRow(NoiseShapes.RowSize(destination.Length, guidanceBatch ? 2 * batch : batch, "step noise"));
        if (step < 0 || step >= StepCount)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"{Path} records {StepCount} steps");
        int wantRows = guidanceBatch ? 2 * Count : Count;
        if (StepRows != wantRows)
            throw new InvalidOperationException($"{Path}: recorded steps have {StepRows} rows, a {(guidanceBatch ? "guidance" : "plain")} batch needs {wantRows}");
        var recorded = _steps.AsSpan(step * StepRows * _row, StepRows * _row);
        for (int r = 0; r < batch; r++)
        {
            int s = CheckSample(samples[r]);
            recorded.Slice(s * _row, _row).CopyTo(destination.Slice(r * _row, _row));
            if (guidanceBatch)
                recorded.Slice((Count + s) * _row, _row).CopyTo(destination.Slice((batch + r) * _row, _row));
        }
    }

    private int CheckSample(long sample)
    {
        if (sample < 0 || sample >= Count)
            throw new ArgumentOutOfRangeException(nameof(sample), sample, $"{Path} records samples 0..{Count - 1}");
        return (int)sample;
    }

    private void CheckRow(int row)
    {
        if (row != _row) throw new ArgumentException($"{Path}: recorded rows hold {_row} values, the caller asked for {row}");
    }
}
