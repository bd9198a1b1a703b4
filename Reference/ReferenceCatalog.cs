namespace DyDiT.Eval.Reference;

/// <summary>One of ADM's published reference batches: 10,000 images (arr_0) plus statistics over the whole dataset.</summary>
public sealed record ReferenceBatch(string Name, string Dataset, int Resolution, string Url);

/// <summary>
/// ADM's reference batches (guided-diffusion, <c>evaluations/README.md</c>). Each holds <c>arr_0</c> (uint8 NHWC images
/// for precision/recall) and <c>mu</c>, <c>sigma</c>, <c>mu_s</c>, <c>sigma_s</c> (used for FID/sFID as they are).
/// </summary>
public static class ReferenceCatalog
{
    private const string Root = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/";

    public static IReadOnlyList<ReferenceBatch> Batches { get; } =
    [
        new("VIRTUAL_imagenet64_labeled.npz", "imagenet", 64, Root + "imagenet/64/VIRTUAL_imagenet64_labeled.npz"),
        new("VIRTUAL_imagenet128_labeled.npz", "imagenet", 128, Root + "imagenet/128/VIRTUAL_imagenet128_labeled.npz"),
        new("VIRTUAL_imagenet256_labeled.npz", "imagenet", 256, Root + "imagenet/256/VIRTUAL_imagenet256_labeled.npz"),
        new("VIRTUAL_imagenet512.npz", "imagenet", 512, Root + "imagenet/512/VIRTUAL_imagenet512.npz"),
        new("VIRTUAL_lsun_bedroom256.npz", "lsun-bedroom", 256, Root + "lsun/bedroom/VIRTUAL_lsun_bedroom256.npz"),
    ];

    /// <summary>The catalog entry whose file name is <paramref name="fileName"/> (case-insensitive), or null.</summary>
    public static ReferenceBatch? Find(string fileName) =>
        Batches.FirstOrDefault(b => string.Equals(b.Name, Path.GetFileName(fileName), StringComparison.OrdinalIgnoreCase));
}
