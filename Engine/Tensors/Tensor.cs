namespace DyDiT.Eval.Engine.Tensors;

/// <summary>
/// A dense, row-major float32 tensor owned by one backend. Model code passes tensors to backend ops and
/// never touches their memory: a CPU tensor lives in 64-byte aligned native memory (so BLAS can use it in
/// place), a CUDA tensor will live on the device.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly int[] _shape;

    internal Tensor(IBackend backend, TensorStorage storage, int[] shape)
    {
        Backend = backend;
        Storage = storage;
        _shape = shape;
        Length = ShapeMath.ElementCount(shape);
        if (Length > storage.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] needs {Length} elements but the storage holds {storage.Length}");
    }

    public IBackend Backend { get; }

    internal TensorStorage Storage { get; }

    public ReadOnlySpan<int> Shape => _shape;

    public int Rank => _shape.Length;

    public long Length { get; }

    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Dim(int dim) => _shape[dim < 0 ? _shape.Length + dim : dim];

    /// <summary>A tensor over the same storage with another shape of the same element count.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var resolved = ShapeMath.Resolve(shape, Length);
        return new Tensor(Backend, Storage.Share(), resolved);
    }

    /// <summary>Copies the values to host memory (C order).</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        Backend.Download(this, result);
        return result;
    }

    public override string ToString() => $"Tensor[{string.Join(", ", _shape)}] on {Backend.Name}";

    public void Dispose() => Storage.Release();

    /// <summary>Returns <paramref name="layer"/>(this) and disposes this, so that layers returning new tensors chain: <c>x = x.Then(f)</c>.</summary>
    public Tensor Then(Func<Tensor, Tensor> layer)
    {
        try
        {
            return layer(this);
        }
        finally
        {
            Dispose();
        }
    }
}

/// <summary>Memory behind a tensor; reference-counted so that reshaped views share it.</summary>
public abstract class TensorStorage
{
    private int _refs = 1;

    protected TensorStorage(long length) => Length = length;

    public long Length { get; }

    internal TensorStorage Share()
    {
        if (Interlocked.Increment(ref _refs) <= 1) throw new ObjectDisposedException(nameof(TensorStorage));
        return this;
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0) Free();
    }

    protected abstract void Free();
}

internal static class ShapeMath
{
    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d} in shape [{string.Join(", ", shape.ToArray())}]");
            n = checked(n * d);
        }
        return n;
    }

    /// <summary>Resolves a single -1 entry and checks the element count.</summary>
    public static int[] Resolve(int[] shape, long length)
    {
        var result = (int[])shape.Clone();
        int free = Array.IndexOf(result, -1);
        if (free >= 0)
        {
            long known = 1;
            for (int i = 0; i < result.Length; i++) if (i != free) known *= result[i];
            if (known == 0 || length % known != 0)
                throw new ArgumentException($"cannot reshape {length} elements to [{string.Join(", ", shape)}]");
            result[free] = checked((int)(length / known));
        }
        if (ElementCount(result) != length)
            throw new ArgumentException($"cannot reshape {length} elements to [{string.Join(", ", shape)}]");
        return result;
    }
}
