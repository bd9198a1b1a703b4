using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Evaluation.Reports;

namespace DyDiT.Eval.Tests.Common.Reports;

/// <summary>
/// Finished-run directories for report tests: a <c>run-summary.json</c> written through <see cref="RunSummary.Save"/>
/// and a small <c>samples.npz</c> (arr_0 uint8 [N,H,W,3], labels int64 [N]) whose pixels follow <see cref="Pixel"/>, so
/// a test can say which value any pixel of any sample must have.
/// </summary>
public static class SyntheticRuns
{
    /// <summary>The value of channel <paramref name="c"/> at (<paramref name="y"/>, <paramref name="x"/>) of sample <paramref name="sample"/> in run <paramref name="run"/>.</summary>
    public static byte Pixel(int run, int sample, int y, int x, int c) => (byte)(run * 71 + sample * 37 + y * 5 + x * 3 + c * 101);

    /// <summary>Writes run directory <paramref name="root"/>/<paramref name="folder"/> with <paramref name="count"/> samples of <paramref name="size"/>².</summary>
    public static string Create(string root, string folder, int run, RunSummary summary, int count, int size)
    {
        var dir = Path.Combine(root, folder);
        Directory.CreateDirectory(dir);
        summary.Save(Path.Combine(dir, RunSummary.FileName));
        var pixels = new byte[count * size * size * 3];
        for (int i = 0, at = 0; i < count; i++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    for (int c = 0; c < 3; c++)
                        pixels[at++] = Pixel(run, i, y, x, c);
        var labels = Enumerable.Range(0, count).Select(i => (long)(i * 7 % 1000)).ToArray();
        using var npz = new NpzWriter(Path.Combine(dir, summary.SamplesFile));
        npz.WriteArray("arr_0", DType.UInt8, [count, size, size, 3], pixels.AsSpan());
        npz.WriteArray("labels", DType.Int64, [count], labels.AsSpan());
        npz.Complete();
        return dir;
    }

    /// <summary>ADM's five lines as the evaluator prints them.</summary>
    public static string AdmLines(double fid, double sfid, double inceptionScore, double precision, double recall) =>
        $"Inception Score: {inceptionScore}\nFID: {fid}\nsFID: {sfid}\nPrecision: {precision}\nRecall: {recall}\n";

    public static RunSummary Dit(int numSamples, int imageSize, bool randomWeights = false) => new()
    {
        RunId = "run-dit-0001",
        Name = "DiT-XL/2 cfg1.5",
        Model = "DiT-XL/2",
        Net = "dit",
        Checkpoint = "/models/DiT-XL-2-256x256.pt",
        CheckpointSha256 = "7a7e1e7bc41ac2c8b3d0d0cbbb1a1d9f1c6b3e3b1b0d2a0c9f0e4c6d8a2b4c6e",
        RandomWeights = randomWeights,
        NumSamples = numSamples,
        Seed = 0,
        CfgScale = 1.5,
        Steps = 10,
        Sampler = "ddpm",
        Labels = "uniform",
        ImageSize = imageSize,
        ShardSize = 4,
        Workers = 2,
        Device = "cpu (16 threads)",
        GenerationSeconds = 12.75,
        WallSeconds = 7.5,
        MacsPerForward = 118.64e9,
        DenseMacsPerForward = 118.64e9,
        StepMacsPerForward = Enumerable.Repeat(118.64e9, 10).ToArray(),
        Reference = "/refs/VIRTUAL_imagenet256_labeled.npz",
        Inception = "/models/pt_inception-2015-12-05.pt",
        Metrics = new RunMetrics { Fid = 2.2735, Sfid = 4.6012, InceptionScore = 278.24, Precision = 0.8271, Recall = 0.5753 },
        EvaluationText = AdmLines(2.2735, 4.6012, 278.24, 0.8271, 0.5753),
        CreatedAt = new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero),
    };

    public static RunSummary DyDit(int numSamples, int imageSize, bool randomWeights = false)
    {
        var steps = Enumerable.Range(0, 10).ToArray();
        return new RunSummary
        {
            RunId = "run-dydit-0002",
            Name = "DyDiT λ=0.7 <fast> & \"lean\"", // characters every output format must escape
            Model = "DiT-XL/2",
            Net = "dydit",
            Checkpoint = "/models/new_dydit0.7.pt",
            CheckpointSha256 = "0f0e0d0c0b0a09080706050403020100ffeeddccbbaa99887766554433221100",
            Lambda = 0.7,
            RandomWeights = randomWeights,
            NumSamples = numSamples,
            Seed = 1,
            CfgScale = 1.5,
            Steps = 10,
            Sampler = "ddpm",
            Labels = "balanced",
            ImageSize = imageSize,
            ShardSize = 4,
            Workers = 3,
            Device = "cuda:0",
            GenerationSeconds = 8.125,
            WallSeconds = 3.25,
            MacsPerForward = 84.33e9,
            DenseMacsPerForward = 118.64e9,
            StepMacsPerForward = steps.Select(s => (70 + 3 * s) * 1e9).ToArray(),
            StepActivity = new StepActivity
            {
                Heads = steps.Select(s => 0.55 + 0.04 * s).ToArray(),
                Groups = steps.Select(s => 0.40 + 0.05 * s).ToArray(),
                Tokens = steps.Select(s => 0.90 - 0.03 * s).ToArray(),
            },
            Reference = "/refs/VIRTUAL_imagenet256_labeled.npz",
            Inception = "/models/pt_inception-2015-12-05.pt",
            Metrics = new RunMetrics { Fid = 2.0821, Sfid = 4.5177, InceptionScore = 284.31, Precision = 0.8197, Recall = 0.5912 },
            EvaluationText = AdmLines(2.0821, 4.5177, 284.31, 0.8197, 0.5912),
            CreatedAt = new DateTimeOffset(2025, 3, 2, 8, 30, 0, TimeSpan.FromHours(1)),
        };
    }

    /// <summary>A SparseDiT run without metrics in its summary (the report falls back to its metrics.json) and no step activity.</summary>
    public static RunSummary SparseDit(int numSamples, int imageSize, bool randomWeights = false) => new()
    {
        RunId = "run-sparsedit-0003",
        Model = "SparseDiT-XL/2",
        Net = "sparsedit",
        Checkpoint = "/models/SparseDiT-XL-2-256.pt",
        RandomWeights = randomWeights,
        NumSamples = numSamples,
        Seed = 2,
        CfgScale = 1.5,
        Steps = 10,
        Sampler = "ddim",
        Labels = "uniform",
        ImageSize = imageSize,
        ShardSize = 4,
        Workers = 1,
        Device = "cpu",
        GenerationSeconds = 9.5,
        WallSeconds = 9.5,
        MacsPerForward = 69.5e9,
        StepMacsPerForward = Enumerable.Repeat(69.5e9, 10).ToArray(),
        CreatedAt = new DateTimeOffset(2025, 3, 3, 9, 0, 0, TimeSpan.Zero),
    };

    /// <summary>The metrics.json <c>dydit-eval evaluate --json</c> writes, for the SparseDiT run.</summary>
    public const string SparseDitMetricsJson =
        "{\n  \"inception_score\": 251.5,\n  \"fid\": 2.6125,\n  \"sfid\": 5.25,\n  \"precision\": 0.8,\n  \"recall\": 0.6,\n  \"n_ref\": 10000,\n  \"n_sample\": 50000\n}\n";
}
