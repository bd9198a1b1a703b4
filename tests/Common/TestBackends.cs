using DyDiT.Eval.Engine.Backends;
using DyDiT.Eval.Engine.Backends.Cuda;
using DyDiT.Eval.Engine.Tensors;
using Xunit;

namespace DyDiT.Eval.Tests.Common;

/// <summary>
/// The backends every kernel and network test runs on, with the same assertions and tolerances: <c>cpu</c> and
/// <c>ilgpu-cpu</c> (the CUDA backend's kernels on ILGPU's CPU accelerator) always, <c>cuda:0</c> when this machine has
/// a usable GPU. Use as <c>[Theory, MemberData(nameof(TestBackends.Devices), MemberType = typeof(TestBackends))]</c>
/// with a <see cref="BackendPool"/> class fixture.
/// </summary>
public static class TestBackends
{
    public static readonly bool HasCuda = CudaProbe.Run().Problem == null;

    public static TheoryData<string> Devices
    {
        get
        {
            var d = new TheoryData<string> { "cpu", "ilgpu-cpu" };
            if (HasCuda) d.Add("cuda:0");
            return d;
        }
    }

    /// <summary>Only the device backends (ilgpu-cpu, and cuda:0 when present): for tests of GPU-only behaviour.</summary>
    public static TheoryData<string> DeviceBackends
    {
        get
        {
            var d = new TheoryData<string> { "ilgpu-cpu" };
            if (HasCuda) d.Add("cuda:0");
            return d;
        }
    }

    /// <summary>A fresh backend; tests use 2 threads (the CI machine's cores) unless they ask for another count.</summary>
    public static IBackend Create(string device, int threads = 2) => Backends.Create(device, threads);
}

/// <summary>One backend per device name, made on first use and shared by the tests of one class (kernels compile once).</summary>
public sealed class BackendPool : IDisposable
{
    private readonly Dictionary<string, IBackend> _backends = new();

    public IBackend this[string device]
    {
        get
        {
            lock (_backends)
            {
                if (!_backends.TryGetValue(device, out var b)) _backends[device] = b = TestBackends.Create(device);
                return b;
            }
        }
    }

    public void Dispose()
    {
        foreach (var b in _backends.Values) b.Dispose();
    }
}
