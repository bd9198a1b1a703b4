using System.Text.Json;
using DyDiT.Eval.Engine.Tensors;
using DyDiT.Eval.Workers.Networks;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// Resolves a model spec — a preset name (<c>DiT-XL/2</c> …) or a JSON file with the official constructor kwargs (the
/// fixtures' model JSON, or the bare kwargs object) — and loads its checkpoint as an <see cref="IDiffusionModel"/>.
/// A JSON file may name its class (<c>"class": "models.DiT"</c>); other networks register here as they are added.
/// </summary>
public static class DiffusionModels
{
    /// <summary>The <c>class</c> value of DiT's own models.DiT (absent means the same).</summary>
    public const string DitClass = "models.DiT";

    /// <summary>The <c>class</c> value of FlexDiT's models.DiT (SparseDiT), as the fixtures name it.</summary>
    public const string SparseDitClass = "models.DiT (FlexDiT models.py)";

    /// <summary>The <c>class</c> value of DyDiT's models.DiT, as the fixtures name it.</summary>
    public const string DyDitClass = "models.DiT (DyDiT/models.py)";

    /// <summary>Whether <paramref name="spec"/> names a preset rather than a file.</summary>
    public static bool IsPreset(string spec) =>
        DitConfig.PresetNames.Contains(spec, StringComparer.OrdinalIgnoreCase) || SparseDitConfig.PresetNames.Contains(spec, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Loads <paramref name="checkpoint"/> for <paramref name="spec"/>. <paramref name="imageSize"/> and
    /// <paramref name="numClasses"/> complete a preset (latent size = image size / 8, as the scripts); a JSON config
    /// carries its own. Unknown presets and classes raise <see cref="ArgumentException"/>; a malformed JSON file
    /// raises <see cref="FormatException"/> naming it.
    /// </summary>
    public static IDiffusionModel Load(string spec, string checkpoint, IBackend backend, int imageSize = 256, int numClasses = 1000,
        string? net = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (net != null) CheckNet(net, checkpoint);
        if (IsPreset(spec))
        {
            if (imageSize <= 0 || imageSize % 8 != 0) throw new ArgumentException($"image size {imageSize} is not a positive multiple of 8");
            string kind = Kind(IsSparsePreset(spec), null, checkpoint, net);
            if (kind == "sparsedit")
                return SparseDitDiffusionModel.Load(checkpoint, SparseDitConfig.Preset(spec, imageSize / 8, numClasses), backend);
            var preset = DitConfig.Preset(spec, imageSize / 8, numClasses);
            return kind == "dydit" ? DyDitDiffusionModel.Load(checkpoint, preset, backend) : DitDiffusionModel.Load(checkpoint, preset, backend);
        }
        using (var doc = ParseModelJson(spec))
        {
            var root = doc.RootElement;
            string? cls = ClassOf(root, spec);
            try
            {
                string kind = Kind(false, cls, checkpoint, net);
                if (kind == "sparsedit")
                {
                    var sparse = SparseDitConfig.FromJson(root);
                    return SparseDitDiffusionModel.Load(checkpoint, sparse, backend);
                }
                var config = DitConfig.FromJson(root);
                return kind == "dydit" ? DyDitDiffusionModel.Load(checkpoint, config, backend) : DitDiffusionModel.Load(checkpoint, config, backend);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
            {
                throw new FormatException($"{spec}: {e.Message}", e);
            }
        }
    }

    /// <summary>
    /// The network <see cref="Load"/> builds for these arguments: <c>sparsedit</c> for a SparseDiT preset or FlexDiT class,
    /// else <c>dydit</c> when asked for, or (nothing asked) for DyDiT's class or a checkpoint with routers, else <c>dit</c>.
    /// </summary>
    public static string NetKind(string spec, string checkpoint, string? net = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (IsPreset(spec)) return Kind(IsSparsePreset(spec), null, checkpoint, net);
        using var doc = ParseModelJson(spec);
        return Kind(false, ClassOf(doc.RootElement, spec), checkpoint, net);
    }

    private static string Kind(bool sparsePreset, string? cls, string checkpoint, string? net) =>
        sparsePreset || cls == SparseDitClass ? "sparsedit"
        : net == "dydit" || (net == null && (cls == DyDitClass || HasRouters(checkpoint))) ? "dydit"
        : "dit";

    private static bool IsSparsePreset(string spec) => SparseDitConfig.PresetNames.Contains(spec, StringComparer.OrdinalIgnoreCase);

    private static JsonDocument ParseModelJson(string spec)
    {
        if (!File.Exists(spec))
            throw new ArgumentException($"model '{spec}' is neither a preset ({string.Join(", ", DitConfig.PresetNames)}) nor an existing JSON config file");
        try
        {
            // A key given twice is refused (readers disagree on which one wins): "Duplicate property 'depth' …".
            return JsonDocument.Parse(File.ReadAllText(spec), new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new FormatException($"{spec}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>The model JSON's <c>class</c> (null when absent); a class the sampler cannot run is an error naming it.</summary>
    private static string? ClassOf(JsonElement root, string spec)
    {
        string? cls = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("class", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        if (cls is not null && cls != DitClass && cls != SparseDitClass && cls != DyDitClass)
            throw new ArgumentException($"{spec}: model class '{cls}' is not supported by the sampler (supported: {DitClass}, {DyDitClass}, {SparseDitClass})");
        return cls;
    }

    /// <summary>
    /// A network kind forced by the user must fit the checkpoint: DiT given a DyDiT file (or the reverse) is an error that
    /// names the router keys, before any compute.
    /// </summary>
    private static void CheckNet(string net, string checkpoint)
    {
        if (net is not ("dit" or "dydit" or "sparsedit")) throw new ArgumentException($"network '{net}' is not dit, dydit or sparsedit");
        if (net == "sparsedit" || !File.Exists(checkpoint)) return;
        var routers = RouterKeys(checkpoint);
        if (net == "dit" && routers.Count > 0)
            throw new Engine.Formats.TensorFileException(checkpoint,
                $"is a DyDiT checkpoint, not DiT: unexpected router keys {string.Join(", ", routers.Take(3))}{(routers.Count > 3 ? $" (+{routers.Count - 3} more)" : "")}; use --net dydit");
        if (net == "dydit" && routers.Count == 0)
            throw new Engine.Formats.TensorFileException(checkpoint, "has no DyDiT router keys (blocks.N.attn_rate.router.*): it is a DiT checkpoint; use --net dit");
    }

    private static List<string> RouterKeys(string checkpoint)
    {
        using var file = Engine.Formats.Torch.TorchCheckpoint.Open(checkpoint);
        return file.StateDict().Keys.Where(k => k.Contains("_rate.router", StringComparison.Ordinal) || k.Contains("token_selection.", StringComparison.Ordinal)).ToList();
    }

    /// <summary>
    /// Whether a DiT-shaped checkpoint carries DyDiT's routers (<c>…attn_rate.router…</c>): the same presets and JSON serve
    /// DiT and DyDiT, and the λ of a DyDiT file lives in its routers.
    /// </summary>
    public static bool HasRouters(string checkpoint) => File.Exists(checkpoint) && RouterKeys(checkpoint).Count > 0;
}
