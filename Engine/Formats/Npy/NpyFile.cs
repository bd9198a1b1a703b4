namespace DyDiT.Eval.Engine.Formats.Npy;

/// <summary>A lone .npy file, memory-mapped; its one array has the name "".</summary>
public sealed class NpyFile : IDisposable
{
    private readonly MappedFile _file;

    private NpyFile(MappedFile file, NpyArray array)
    {
        _file = file;
        Array = array;
    }

    public NpyArray Array { get; }

    public static NpyFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var array = NpyArray.Create(path, "", () => new MappedRangeStream(file, 0, file.Length), file.Length);
            return new NpyFile(file, array);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => _file.Dispose();
}
