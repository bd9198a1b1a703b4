using System.Diagnostics;
using System.Globalization;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Diffusion;
using DyDiT.Eval.Workers.Networks;
using DyDiT.Eval.Workers.Networks.Layers;
using DyDiT.Eval.Workers.Networks.Vae;
using DyDiT.Eval.Workers.Noise;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// What a shard generator needs to know: the model (preset name or model JSON path), weights, VAE folder, network kind
/// (null = detect), sizes, seed and the sampling protocol. <paramref name="Labels"/> is <c>uniform</c> (drawn from each
/// sample's own noise stream), <c>balanced</c> (sample i gets class i mod num_classes) or a label file with one class
/// per sample of the run.
/// </summary>
public sealed record ShardSettings(
    string Model, string Checkpoint, string Vae, string? Net, int ImageSize, int NumClasses, long Seed, float CfgScale, int Steps,
    SamplerKind Kind, double Eta, string Labels, int BatchSize);

/// <summary>
/// What one shard cost: samples, seconds, multiply-accumulates executed in total and per sampling step (summed over the
/// shard's samples), the dense DiT count per step when the network reports it, and DyDiT's per-step shares of active
/// heads / channel groups / tokens (sample-weighted means; null for networks without routing).
/// </summary>
public sealed record ShardCost(int Samples, double Seconds, long[] StepMultiplyAccumulates, long[]? StepDenseMultiplyAccumulates,
    RoutingActivity[]? StepActivity)
{
    public long MultiplyAccumulates => StepMultiplyAccumulates.Sum();
}

/// <summary>
/// Generates the samples [first, first + count) of a run into one <c>.npz</c>: <c>arr_0</c> uint8 [n,H,W,3] and
/// <c>labels</c> int64 [n] (ADM's batch layout, so a shard is itself a valid sample batch), plus the shard's cost:
/// <c>step_macs</c> int64 [S], and when known <c>step_dense_macs</c> int64 [S] and <c>step_activity</c> float64 [S,3]
/// (heads, groups, tokens). Every sample uses its own noise streams (<see cref="PerSampleNoise"/>) and the network is
/// called per sample, so a sample's bytes do not depend on the shard, batch or worker that makes it — only on the run
/// and its index (for a given CPU kind and thread count; see <see cref="SamplerSettings"/>).
/// </summary>
public sealed class ShardGenerator : IDisposable
{
    private readonly IDiffusionModel _model;
    private readonly VaeDecoder _decoder;
    private readonly Sampler _sampler;
    private readonly PerSampleNoise _noise;
    private readonly long[]? _labelFile;
    private readonly bool _balanced;
    private readonly IBackend _backend;

    private ShardGenerator(ShardSettings settings, IDiffusionModel model, VaeDecoder decoder, IBackend backend)
    {
        Settings = settings;
        _model = model;
        _decoder = decoder;
        _backend = backend;
        if (decoder.Config.LatentChannels != model.InChannels)
            throw new TensorFileException(settings.Vae, $"the VAE decodes {decoder.Config.LatentChannels}-channel latents, the model makes {model.InChannels}");
        var schedule = DiffusionSchedule.Create(settings.Steps.ToString(CultureInfo.InvariantCulture));
        _sampler = new Sampler(model, new SamplerSettings(schedule, settings.CfgScale, settings.Kind, settings.Eta, BatchInvariant: true));
        _noise = new PerSampleNoise((ulong)settings.Seed);
        _balanced = settings.Labels == "balanced";
        if (settings.Labels is not ("uniform" or "balanced"))
        {
            _labelFile = LabelFile.Read(settings.Labels);
            foreach (long label in _labelFile)
                if (label >= model.NumClasses) throw new TensorFileException(settings.Labels, $"label {label} is outside [0, {model.NumClasses})");
        }
        ImageSize = model.InputSize * decoder.Config.UpsampleFactor;
        ImageChannels = decoder.Config.OutChannels;
    }

    public ShardSettings Settings { get; }

    /// <summary>The network's short name (DiT, DyDiT, SparseDiT).</summary>
    public string ModelName => _model.Name;

    public int ImageSize { get; }

    public int ImageChannels { get; }

    /// <summary>Loads the network and the VAE decoder on <paramref name="backend"/>.</summary>
    public static ShardGenerator Load(ShardSettings settings, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var model = DiffusionModels.Load(settings.Model, settings.Checkpoint, backend, settings.ImageSize, settings.NumClasses, settings.Net);
        try
        {
            var decoder = VaeDecoder.Load(settings.Vae, backend);
            return new ShardGenerator(settings, model, decoder, backend);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes samples [<paramref name="first"/>, first + <paramref name="count"/>) to <paramref name="path"/> (temporary
    /// name, renamed when complete; nothing is left behind on failure or cancellation). <paramref name="samplesDone"/> is
    /// told how many samples of the shard are finished (fractions of a batch as its steps progress).
    /// </summary>
    public ShardCost Write(string path, long first, int count, IProgress<double>? samplesDone = null, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (_labelFile != null && first + count > _labelFile.Length)
            throw new TensorFileException(Settings.Labels, $"holds {_labelFile.Length} labels; samples up to {first + count} are requested");
        var clock = Stopwatch.StartNew();
        int steps = _sampler.Settings.Schedule.NumTimesteps, batch = Math.Min(Settings.BatchSize, count);
        int c = _model.InChannels, size = _model.InputSize;
        var labels = new long[count];
        var macs = new long[steps];
        long[]? dense = new long[steps];
        var activity = new double[steps * 3];
        bool routed = true;

        using var writer = new NpzWriter(path);
        writer.BeginArray("arr_0", DType.UInt8, count, ImageSize, ImageSize, ImageChannels);
        for (int start = 0; start < count; start += batch)
        {
            cancellation.ThrowIfCancellationRequested();
            int n = Math.Min(batch, count - start);
            var indices = new long[n];
            for (int k = 0; k < n; k++) indices[k] = first + start + k;
            long[]? given = _labelFile != null ? Array.ConvertAll(indices, i => _labelFile[i])
                : _balanced ? Array.ConvertAll(indices, i => i % _model.NumClasses) : null;
            int done = start;
            var result = _sampler.Sample(indices, _noise, given,
                step => samplesDone?.Report(done + (double)n * step / (steps + 1)), cancellation);
            result.Labels.CopyTo(labels, start);
            for (int s = 0; s < steps; s++)
            {
                macs[s] += result.StepMultiplyAccumulates[s];
                if (dense != null && result.StepDenseMultiplyAccumulates is { } d) dense[s] += d[s];
                else dense = null;
                if (routed && result.StepActivity is { } a)
                {
                    activity[3 * s] += a[s].Heads * n;
                    activity[3 * s + 1] += a[s].Groups * n;
                    activity[3 * s + 2] += a[s].Tokens * n;
                }
                else routed = false;
            }
            cancellation.ThrowIfCancellationRequested();
            writer.Write<byte>(SampleImages.Decode(_decoder, _backend, result.Latents, n, c, size, batchInvariant: true));
            samplesDone?.Report(start + n);
        }
        writer.EndArray();
        writer.WriteArray<long>("labels", DType.Int64, [count], labels);
        writer.WriteArray<long>("step_macs", DType.Int64, [steps], macs);
        if (dense != null) writer.WriteArray<long>("step_dense_macs", DType.Int64, [steps], dense);
        RoutingActivity[]? shares = null;
        if (routed)
        {
            for (int i = 0; i < activity.Length; i++) activity[i] /= count;
            writer.WriteArray<double>("step_activity", DType.Float64, [steps, 3], activity);
            shares = Enumerable.Range(0, steps).Select(s => new RoutingActivity(activity[3 * s], activity[3 * s + 1], activity[3 * s + 2])).ToArray();
        }
        writer.Complete();
        return new ShardCost(count, clock.Elapsed.TotalSeconds, macs, dense, shares);
    }

    public void Dispose()
    {
        _model.Dispose();
        _decoder.Dispose();
    }
}
