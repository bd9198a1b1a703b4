using System.Text.Json;
using DyDiT.Eval.Tests.Common;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>checkpoints/manifest.json: which object each fixture holds and what every key path must be.</summary>
internal static class CheckpointManifest
{
    private static readonly Lazy<JsonElement> Doc = new(() =>
        JsonDocument.Parse(System.IO.File.ReadAllText(Fixtures.Path("checkpoints", "manifest.json"))).RootElement.Clone());

    public static JsonElement Root => Doc.Value;

    public static IEnumerable<string> FileNames => Root.GetProperty("files").EnumerateObject().Select(p => p.Name);

    public static JsonElement File(string name) => Root.GetProperty("files").GetProperty(name);

    /// <summary>objects.state_dict for state_dict_* files, objects.checkpoint for checkpoint_* files.</summary>
    public static JsonElement ObjectsFor(string fileName)
    {
        string kind = fileName.StartsWith("state_dict", StringComparison.Ordinal) ? "state_dict"
            : fileName.StartsWith("checkpoint", StringComparison.Ordinal) ? "checkpoint"
            : throw new InvalidOperationException($"manifest file {fileName} matches neither objects.state_dict nor objects.checkpoint");
        return Root.GetProperty("objects").GetProperty(kind);
    }

    /// <summary>Manifest key path ("/model/proj.weight") as our tensor name ("model/proj.weight").</summary>
    public static string NameOf(string manifestPath) => manifestPath.TrimStart('/');

    public static bool IsTensor(JsonElement entry) => entry.TryGetProperty("sha256_values_le", out _);
}
