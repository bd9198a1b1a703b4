using DyDiT.Eval.Workers.Diffusion;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;
using DyDiT.Eval.Workers.Noise;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>The reverse process: DiT's <c>p_sample_loop</c> or the <c>ddim_sample_loop</c> that FlexDiT's sample.py uses.</summary>
public enum SamplerKind
{
    Ddpm,
    Ddim,
}

/// <summary>
/// How to sample: the (respaced) chain, the guidance scale (guidance is on when it is above 1, as sample_ddp.py's
/// <c>using_cfg = cfg_scale &gt; 1.0</c>), the loop, and DDIM's η.
/// <para><paramref name="BatchInvariant"/>: call the network once per sample (its row, plus its null-label copy with
/// guidance) instead of once per batch. BLAS results for a row depend on the shape of the whole product (OpenBLAS picks
/// kernels, edge tiles and thread splits by size), so only fixed-shape calls make a sample's bytes independent of the
/// batch it is generated in (for a given backend, CPU kind and thread count: OpenBLAS's thread splits change the rounding
/// too). Costs little on CPU for the large models (their products stay hundreds of rows tall).</para>
/// </summary>
public sealed record SamplerSettings(DiffusionSchedule Schedule, float CfgScale = 1f, SamplerKind Kind = SamplerKind.Ddpm, double Eta = 0.0,
    bool BatchInvariant = false)
{
    public bool UsesGuidance => CfgScale > 1f;
}

/// <summary>
/// One sampled batch. <see cref="Latents"/> holds the samples' final latents (B, C, H, W) (the conditional half with
/// guidance); <see cref="Final"/> the loop's whole final batch (2B rows with guidance, the null-label copies after).
/// <see cref="StepMultiplyAccumulates"/>[s] counts the network's work at step s for the whole loop batch,
/// <see cref="StepDenseMultiplyAccumulates"/>[s] what a plain DiT of the same shape would have done (null when the model
/// does not say), <see cref="StepActivity"/>[s] the mean share of routed units that ran (DyDiT only, else null).
/// </summary>
public sealed record SampleBatch(long[] Samples, long[] Labels, float[] Latents, float[] Final, long[] StepMultiplyAccumulates,
    long[]? StepDenseMultiplyAccumulates = null, RoutingActivity[]? StepActivity = null)
{
    public long MultiplyAccumulates => StepMultiplyAccumulates.Sum();
}

/// <summary>
/// Runs the DiT samplers over a batch of sample indices, drawing everything random from an <see cref="INoiseSource"/>
/// in the scripts' order: x_T, then the labels (unless given), then one draw for the loop's whole batch per step
/// (the last step and DDIM with η = 0 included). With guidance the loop batch is <c>[x_T; x_T]</c> with labels
/// <c>[y; null]</c> and the model's <c>forward_with_cfg</c>; without, plain <c>forward</c> on B rows. The network sees
/// the original timesteps; no clipping of x0 (<c>clip_denoised=False</c> in every script).
/// </summary>
public sealed class Sampler
{
    public Sampler(IDiffusionModel model, SamplerSettings settings)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Settings = settings ?? throw new ArgumentNullException(nameof(settings));
        if (!model.LearnSigma || model.OutChannels != 2 * model.InChannels)
            throw new ArgumentException($"{model.Name} outputs {model.OutChannels} channels for {model.InChannels} latent channels; " +
                "DiT's diffusion (learned-range variance) needs learn_sigma and 2·C outputs");
        if (!(settings.CfgScale >= 1f))
            throw new ArgumentException($"cfg scale {settings.CfgScale} must be >= 1 (as the DiT scripts assert)");
        if (settings.UsesGuidance && model.NullClass is null)
            throw new ArgumentException($"{model.Name} has no null class (class_dropout_prob 0), so it cannot use classifier-free guidance");
        if (settings.Schedule.NumTimesteps < 2)
            throw new ArgumentException("a sampling chain needs at least 2 steps");
        if (!(settings.Eta >= 0)) throw new ArgumentException($"eta {settings.Eta} must be >= 0");
    }

    public IDiffusionModel Model { get; }

    public SamplerSettings Settings { get; }

    /// <summary>Values per sample latent (C·H·W).</summary>
    public int LatentSize => Model.InChannels * Model.InputSize * Model.InputSize;

    /// <summary>
    /// Samples the given indices (row r = <paramref name="samples"/>[r]). <paramref name="labels"/>, when given, are
    /// used instead of drawing them (sample.py's fixed class list; nothing is then drawn for labels).
    /// <paramref name="stepDone"/> is told the number of steps finished after each step.
    /// </summary>
    public SampleBatch Sample(ReadOnlySpan<long> samples, INoiseSource noise, long[]? labels = null,
        Action<int>? stepDone = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(noise);
        int b = samples.Length;
        if (b == 0) throw new ArgumentException("no samples to generate", nameof(samples));
        var model = Model;
        var schedule = Settings.Schedule;
        bool guided = Settings.UsesGuidance;
        int c = model.InChannels, size = model.InputSize, row = LatentSize;
        int m = guided ? 2 * b : b;
        int n = checked(m * row);

        var x = new float[n];
        noise.InitialLatents(samples, x.AsSpan(0, b * row));
        var y = new long[m];
        if (labels is null)
            noise.Labels(samples, model.NumClasses, y.AsSpan(0, b));
        else
        {
            if (labels.Length != b) throw new ArgumentException($"{labels.Length} labels for {b} samples", nameof(labels));
            for (int r = 0; r < b; r++)
            {
                if (labels[r] < 0 || labels[r] >= model.NumClasses)
                    throw new ArgumentException($"label {labels[r]} is outside [0, {model.NumClasses})", nameof(labels));
                y[r] = labels[r];
            }
        }
        if (guided)
        {
            x.AsSpan(0, b * row).CopyTo(x.AsSpan(b * row));
            y.AsSpan(b).Fill(model.NullClass!.Value);
        }

        var output = new float[2 * n];
        var mean = new float[n];
        var logVariance = new float[n];
        var predXStart = new float[n];
        var stepNoise = new float[n];
        var next = new float[n];
        var t = new long[m];
        int steps = schedule.NumTimesteps;
        var macs = new long[steps];
        long[]? dense = new long[steps];
        RoutingActivity[]? activity = new RoutingActivity[steps];
        using var network = new NetworkCall(model, Settings, b, row);
        for (int s = 0; s < steps; s++)
        {
            cancellation.ThrowIfCancellationRequested();
            int index = steps - 1 - s;
            Array.Fill(t, schedule.TimestepMap[index]);
            var cost = network.Run(x, t, y, output);
            macs[s] = cost.MultiplyAccumulates;
            if (dense != null && cost.DenseMultiplyAccumulates is long d) dense[s] = d;
            else dense = null;
            if (activity != null && cost.Activity is { } a) activity[s] = a;
            else activity = null;
            SamplingSteps.PMeanVariance(schedule, index, m, c, x, output, mean, logVariance, predXStart);
            noise.StepNoise(samples, s, guided, stepNoise);
            if (Settings.Kind == SamplerKind.Ddim)
                SamplingSteps.DdimStep(schedule, index, Settings.Eta, x, predXStart, stepNoise, next);
            else
                SamplingSteps.PSample(index, mean, logVariance, stepNoise, next);
            (x, next) = (next, x);
            stepDone?.Invoke(s + 1);
        }
        return new SampleBatch(samples.ToArray(), y.AsSpan(0, b).ToArray(), x.AsSpan(0, b * row).ToArray(), x, macs, dense, activity);
    }

    /// <summary>
    /// The model evaluated on the loop batch: in one call, or (batch-invariant) in one call per sample on rows
    /// {r} or {r, B + r}, whose outputs land in the same rows of the full output.
    /// </summary>
    private sealed class NetworkCall : IDisposable
    {
        private readonly IDiffusionModel _model;
        private readonly float _scale;
        private readonly bool _guided, _perSample;
        private readonly int _batch, _row, _rows;
        private readonly Engine.Tensors.Tensor _input;
        private readonly float[]? _x, _out;
        private readonly long[]? _t, _y;

        public NetworkCall(IDiffusionModel model, SamplerSettings settings, int batch, int row)
        {
            _model = model;
            _scale = settings.CfgScale;
            _guided = settings.UsesGuidance;
            _perSample = settings.BatchInvariant && batch > 1;
            _batch = batch;
            _row = row;
            int loopRows = _guided ? 2 * batch : batch;
            _rows = _perSample ? loopRows / batch : loopRows;
            _input = model.Backend.Empty(_rows, model.InChannels, model.InputSize, model.InputSize);
            if (_perSample)
            {
                _x = new float[_rows * row];
                _out = new float[_rows * 2 * row];
                _t = new long[_rows];
                _y = new long[_rows];
            }
        }

        /// <summary>
        /// Writes the model output for x (loop batch) into <paramref name="output"/>; returns the work done: MACs summed
        /// over the calls, dense MACs summed (null if any call did not report them), activity averaged over the calls
        /// (all calls have the same rows).
        /// </summary>
        public StepCost Run(float[] x, long[] t, long[] y, float[] output)
        {
            if (!_perSample) return Call(x, t, y, output);
            long macs = 0;
            long? dense = 0;
            double heads = 0, groups = 0, tokens = 0;
            bool routed = true;
            for (int r = 0; r < _batch; r++)
            {
                for (int k = 0; k < _rows; k++)
                {
                    int source = k * _batch + r; // row r, then its null-label copy B + r
                    x.AsSpan(source * _row, _row).CopyTo(_x.AsSpan(k * _row, _row));
                    _t![k] = t[source];
                    _y![k] = y[source];
                }
                var cost = Call(_x!, _t!, _y!, _out!);
                macs += cost.MultiplyAccumulates;
                dense = dense is long sum && cost.DenseMultiplyAccumulates is long d ? sum + d : null;
                if (cost.Activity is { } a)
                {
                    heads += a.Heads;
                    groups += a.Groups;
                    tokens += a.Tokens;
                }
                else routed = false;
                for (int k = 0; k < _rows; k++)
                    _out.AsSpan(k * 2 * _row, 2 * _row).CopyTo(output.AsSpan((k * _batch + r) * 2 * _row, 2 * _row));
            }
            return new StepCost(macs, dense, routed ? new RoutingActivity(heads / _batch, groups / _batch, tokens / _batch) : null);
        }

        private StepCost Call(float[] x, long[] t, long[] y, float[] output)
        {
            _model.Backend.Upload(x, _input);
            using var result = _guided ? _model.ForwardWithCfg(_input, t, y, _scale) : _model.Forward(_input, t, y);
            if (result.Output.Length != output.Length)
                throw new InvalidOperationException($"{_model.Name} returned {result.Output} for {_rows} latents of ({_model.InChannels}, {_model.InputSize}, {_model.InputSize})");
            _model.Backend.Download(result.Output, output);
            return new StepCost(result.MultiplyAccumulates, result.DenseMultiplyAccumulates, result.Activity);
        }

        public void Dispose() => _input.Dispose();
    }

    private readonly record struct StepCost(long MultiplyAccumulates, long? DenseMultiplyAccumulates, RoutingActivity? Activity);
}
