using System.Text.Json;

namespace DyDiT.Eval.Workers.Sampling;

/// <summary>
/// A named sampling setup from <c>configs/NAME.json</c>: which network and model, latent and image size, classes, the
/// official checkpoint and VAE it is meant for, and the protocol's defaults (guidance, steps, sampler, labels).
/// </summary>
public sealed record SamplingPreset(
    string Name, string Description, string Net, string Model, int ImageSize, int LatentSize, int NumClasses,
    string Checkpoint, string Vae, float CfgScale, int Steps, string Sampler, string Labels)
{
    /// <summary>The folder holding the preset files (next to the executable).</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "configs");

    public static IReadOnlyList<string> Names =>
        Directory.Exists(Folder) ? Directory.GetFiles(Folder, "*.json").Select(f => Path.GetFileNameWithoutExtension(f)).Order().ToArray() : [];

    /// <summary>The preset called <paramref name="name"/> (case-insensitive), or null when there is none.</summary>
    public static SamplingPreset? Find(string name)
    {
        var file = Names.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
        return file == null ? null : Read(Path.Combine(Folder, file + ".json"));
    }

    public static SamplingPreset Read(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = doc.RootElement;
            var d = r.GetProperty("defaults");
            var preset = new SamplingPreset(
                Path.GetFileNameWithoutExtension(path), r.GetProperty("description").GetString()!, r.GetProperty("net").GetString()!,
                r.GetProperty("model").GetString()!, r.GetProperty("image_size").GetInt32(), r.GetProperty("latent_size").GetInt32(),
                r.GetProperty("num_classes").GetInt32(), r.GetProperty("checkpoint").GetString()!, r.GetProperty("vae").GetString()!,
                d.GetProperty("cfg_scale").GetSingle(), d.GetProperty("steps").GetInt32(), d.GetProperty("sampler").GetString()!,
                d.GetProperty("labels").GetString()!);
            if (preset.LatentSize * 8 != preset.ImageSize)
                throw new FormatException($"latent_size {preset.LatentSize} is not image_size {preset.ImageSize} / 8");
            if (preset.Net is not ("dit" or "dydit" or "sparsedit"))
                throw new FormatException($"net '{preset.Net}' is not dit, dydit or sparsedit");
            return preset;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException($"{path}: not a sampling preset ({e.Message})", e);
        }
    }
}
