using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Formats.Safetensors;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Engine.Formats.Zip;

namespace DyDiT.Eval.Engine.Formats;

/// <summary>
/// Opens any supported tensor container by its content (not its extension) and lists its tensors:
/// npy, npz, torch-zip, torch-legacy or safetensors.
/// </summary>
public sealed class TensorFile : IDisposable
{
    private readonly IDisposable? _owner;

    private TensorFile(string path, string format, IReadOnlyList<StoredTensor> tensors, IDisposable? owner)
    {
        Path = path;
        Format = format;
        Tensors = tensors;
        _owner = owner;
    }

    public string Path { get; }

    /// <summary>"npy", "npz", "torch-zip", "torch-legacy" or "safetensors".</summary>
    public string Format { get; }

    /// <summary>Every array/tensor in file order (checkpoints: dict order of the key paths).</summary>
    public IReadOnlyList<StoredTensor> Tensors { get; }

    public static TensorFile Open(string path)
    {
        if (Directory.Exists(path))
            throw new TensorFileException(path, "is a directory, not a file (give one .npy, .npz, .pt/.pth/.bin or .safetensors file)");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found", path);
        var head = new byte[16];
        int got;
        using (var fs = File.OpenRead(path)) got = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var magic = head.AsSpan(0, got);
        return Detect(magic) switch
        {
            Kind.Npy => OpenNpy(path),
            Kind.Zip => OpenZip(path),
            Kind.Pickle => OpenTorch(path),
            Kind.Safetensors => OpenSafetensors(path),
            _ => throw new TensorFileException(path,
                $"not a .npy, .npz, PyTorch checkpoint or .safetensors file (starts with {Convert.ToHexString(magic[..Math.Min(8, magic.Length)])})"),
        };
    }

    public void Dispose() => _owner?.Dispose();

    private static TensorFile OpenNpy(string path)
    {
        var npy = NpyFile.Open(path);
        return new TensorFile(path, "npy", [npy.Array], npy);
    }

    // A torch zip checkpoint holds '<prefix>/data.pkl'; any other zip is read as an npz.
    private static TensorFile OpenZip(string path)
    {
        bool isTorch;
        using (var file = MappedFile.Open(path))
            isTorch = ZipIndex.Read(file).Names.Any(n => n.EndsWith("/data.pkl", StringComparison.Ordinal) || n == "data.pkl");
        if (isTorch) return OpenTorch(path);
        var npz = NpzArchive.Open(path);
        return new TensorFile(path, "npz", npz.Arrays, npz);
    }

    private static TensorFile OpenTorch(string path)
    {
        var ckpt = TorchCheckpoint.Open(path);
        return new TensorFile(path, ckpt.Format, ckpt.Tensors, ckpt);
    }

    private static TensorFile OpenSafetensors(string path)
    {
        var st = SafetensorsFile.Open(path);
        return new TensorFile(path, "safetensors", st.Tensors, st);
    }

    private enum Kind { Unknown, Npy, Zip, Pickle, Safetensors }

    private static Kind Detect(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 6 && head[0] == 0x93 && head[1..6].SequenceEqual("NUMPY"u8)) return Kind.Npy;
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8)) return Kind.Zip;
        if (head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5) return Kind.Pickle;
        if (head.Length >= 9 && head[8] == (byte)'{') return Kind.Safetensors;
        return Kind.Unknown;
    }
}
