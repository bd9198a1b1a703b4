using System.CommandLine;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Evaluation.Inception;

namespace DyDiT.Eval.Cli.Commands;

/// <summary>The options that run the FID Inception network over image batches (shared by features and evaluate).</summary>
internal sealed class InceptionOptions
{
    public Option<string?> Weights { get; } = new("--inception")
    {
        Description = "FID Inception weights: pt_inception-2015-12-05-6726825d.pth (pytorch-fid's release; legacy or zip torch.save format)",
    };

    public Option<int> Batch { get; } = new("--batch")
    {
        Description = "Images per network call (memory grows with it)",
        DefaultValueFactory = _ => FeatureExtractor.DefaultBatchSize,
    };

    public Option<string> Preprocess { get; } = new("--preprocess")
    {
        Description = "adm: TF1 bilinear resize to 299 and (x-128)/128, as ADM's evaluator (default); pytorch-fid: half-pixel resize and 2x/255-1",
        DefaultValueFactory = _ => "adm",
    };

    public InceptionOptions() => Preprocess.AcceptOnlyFromAmong("adm", "pytorch-fid");

    public void AddTo(Command command)
    {
        command.Options.Add(Weights);
        command.Options.Add(Batch);
        command.Options.Add(Preprocess);
    }

    public static PreprocessMode Mode(string name) => name == "pytorch-fid" ? PreprocessMode.PytorchFid : PreprocessMode.Adm;

    /// <summary>Loads the network (exit 1 naming the file/key on bad weights) and returns a features function with a progress bar.</summary>
    public static Func<string, InceptionFeatures> Extractor(string weightsPath, IBackend backend, PreprocessMode mode, int batch)
    {
        if (Directory.Exists(weightsPath)) PathArguments.InputFile(weightsPath, "--inception");
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: Inception weights not found", weightsPath);
        if (batch <= 0) throw new UsageException("--batch must be positive");
        FidInceptionV3? network = null;
        return imagesPath =>
        {
            network ??= FidInceptionV3.Load(weightsPath, backend);
            int count;
            using (var npz = Engine.Formats.Npy.NpzArchive.Open(imagesPath)) count = FeatureExtractor.Images(npz).Count;
            InceptionFeatures? result = null;
            Progress.Items($"Inception features of {Path.GetFileName(imagesPath)}", count, "img",
                report => result = FeatureExtractor.Extract(imagesPath, network, mode, batch, new IntReporter(report)));
            return result!;
        };
    }

    /// <summary>
    /// Wraps <paramref name="extract"/> with the reference-feature cache: the features of a reference batch are computed
    /// once per (reference file, weights file, preprocessing) and read back afterwards. The cache is never fatal: an
    /// entry that fails its checksum or does not read is recomputed with a warning naming it, and an entry that cannot
    /// be written (full disk, read-only cache folder) is a warning too.
    /// </summary>
    public static Func<string, InceptionFeatures> Cached(Func<string, InceptionFeatures> extract, string weightsPath, string preprocess, Reference.FeatureCache cache) =>
        imagesPath =>
        {
            Console.Error.WriteLine($"hashing {Path.GetFileName(imagesPath)} and the weights for the reference-feature cache...");
            string key = Reference.FeatureCache.Key(imagesPath, weightsPath, preprocess);
            if (cache.TryGet(key, out var cached, out var rejected))
            {
                try
                {
                    var loaded = Load(cached);
                    Console.Error.WriteLine($"using cached reference features {cached}");
                    return loaded;
                }
                catch (Exception e) when (e is TensorFileException or IOException or UnauthorizedAccessException)
                {
                    rejected = $"{cached}: does not read as features ({e.Message})";
                }
            }
            if (rejected != null) Console.Error.WriteLine($"warning: reference-feature cache entry {rejected}; not used, recomputing it");
            var features = extract(imagesPath);
            try
            {
                cache.Put(key, features.Save);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"warning: could not store the reference features in the cache {cache.Directory} ({e.Message}); carrying on without");
            }
            return features;
        };

    private static InceptionFeatures Load(string path)
    {
        using var npz = Engine.Formats.Npy.NpzArchive.Open(path);
        foreach (var name in new[] { "pool", "spatial", "logits" })
            if (!npz.Contains(name)) throw new TensorFileException(path, $"has no '{name}' array");
        var pool = npz["pool"].ToFloat32();
        var features = new InceptionFeatures(pool.Length / FidInceptionV3.PoolFeatures, pool, npz["spatial"].ToFloat32(), npz["logits"].ToFloat32());
        if (features.Pool.Length != features.Count * FidInceptionV3.PoolFeatures || features.Spatial.Length != features.Count * FidInceptionV3.SpatialFeatures
            || features.Logits.Length != features.Count * FidInceptionV3.Classes)
            throw new TensorFileException(path, "pool, spatial and logits do not hold the same number of rows");
        return features;
    }

    private sealed class IntReporter(IProgress<long> inner) : IProgress<int>
    {
        public void Report(int value) => inner.Report(value);
    }
}
