using System.Globalization;
using DyDiT.Eval.Cluster.Ledger;
using DyDiT.Eval.Cluster.Specs;

namespace DyDiT.Eval.Cluster.Work;

/// <summary>
/// Names and checks of a run's files in its output directory. A shard's name depends only on its sample range, so a
/// retried or re-leased shard is written under the same name (temp + rename) and never twice under different names.
/// </summary>
public static class ShardFiles
{
    /// <summary>The merged ADM sample batch.</summary>
    public const string Samples = "samples.npz";

    /// <summary>The merged Inception features (pool, spatial, logits) when the run has Inception weights.</summary>
    public const string Features = "features.npz";

    /// <summary>The resolved run spec and its id, written when the run is planned.</summary>
    public const string RunFile = "run.json";

    /// <summary><c>shard-&lt;first&gt;-&lt;last&gt;.npz</c> (last inclusive).</summary>
    public static string SamplesName(long first, int count) =>
        string.Create(CultureInfo.InvariantCulture, $"shard-{first}-{first + count - 1}.npz");

    /// <summary><c>shard-&lt;first&gt;-&lt;last&gt;.features.npz</c>.</summary>
    public static string FeaturesName(long first, int count) =>
        string.Create(CultureInfo.InvariantCulture, $"shard-{first}-{first + count - 1}.features.npz");

    /// <summary>
    /// The path of <paramref name="name"/> (a file name the ledger recorded) in <paramref name="run"/>'s output directory.
    /// A name that is not a plain file name there (<c>..</c>, rooted, a separator) is refused with
    /// <see cref="LedgerDataException"/>: nothing outside the output directory is ever read, replaced or deleted.
    /// </summary>
    public static string PathOf(RunRecord run, ShardRecord shard, string name)
    {
        if (!LedgerRows.IsPlainFileName(name))
            throw new LedgerDataException($"shard {shard.Index} of run {run.RunId} records the file '{name}', which is not a file name inside " +
                                          $"the run's output directory {run.OutputDirectory}; the ledger was altered or is corrupt: nothing was read or deleted");
        return Path.Combine(run.OutputDirectory, name);
    }

    /// <summary>
    /// Whether a done shard's files are there with the sha256 the ledger recorded. <paramref name="problem"/> says what is
    /// wrong otherwise (missing, or the two hashes).
    /// </summary>
    public static bool Verify(RunRecord run, ShardRecord shard, out string problem)
    {
        problem = "";
        if (shard.Result is not { } r) { problem = "not done"; return false; }
        return Check(PathOf(run, shard, r.File), r.Sha256, ref problem)
            && (r.FeaturesFile == null || Check(PathOf(run, shard, r.FeaturesFile), r.FeaturesSha256!, ref problem));
    }

    private static bool Check(string path, string expected, ref string problem)
    {
        if (!File.Exists(path)) { problem = $"{path} is missing"; return false; }
        string actual = ContentHashes.File(path);
        if (actual == expected) return true;
        problem = $"{path} has sha256 {actual}, the ledger recorded {expected}";
        return false;
    }
}
