using DyDiT.Eval.Engine.Backends.Cuda;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>--device</c> / <c>--precision</c> through the real CLI: a name that is not understood is a usage error (2), a device
/// this machine cannot use is an environment error (3) whose message says what is missing, and <c>doctor</c> reports the
/// GPU section whether or not there is a GPU.
/// </summary>
public sealed class DeviceTests : IDisposable
{
    private static readonly bool HasCuda = CudaProbe.Run().Problem == null;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-device-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string[] Forward(params string[] device)
    {
        string input = Path.Combine(_dir.FullName, "in.npz"), output = Path.Combine(_dir.FullName, "out.npz");
        return ["forward", "--net", "dit", "--config", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"),
            "--inputs", input, "-o", output, .. device];
    }

    [Fact]
    public void CudaWithoutADriverIsAnEnvironmentErrorNamingIt()
    {
        if (HasCuda) return; // this machine has a usable GPU: nothing is missing
        var r = CliProcess.Run(Forward("--device", "cuda:0"));
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.True(r.Stderr.Contains("libcuda", StringComparison.Ordinal) || r.Stderr.Contains("driver", StringComparison.Ordinal), r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Theory]
    [InlineData("forward")]
    [InlineData("features")]
    [InlineData("sample")]
    [InlineData("evaluate")]
    public void UnknownDeviceIsAUsageError(string verb)
    {
        string[] args = verb switch
        {
            "forward" => Forward("--device", "bogus"),
            "features" => ["features", "--images", "x.npz", "--inception", "w.pth", "-o", "f.npz", "--device", "bogus"],
            "sample" => ["sample", "--model", "DiT-XL/2", "--checkpoint", "k.pt", "--vae", "v", "--num-samples", "1", "-o", "o.npz", "--device", "bogus"],
            _ => ["evaluate", "--ref", "r.npz", "--sample", "s.npz", "--device", "bogus"],
        };
        var r = CliProcess.Run(args);
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("unknown device 'bogus'", r.Stderr);
    }

    [Theory]
    [InlineData("cpu", "bf16")]
    [InlineData("cpu", "tf32")]
    [InlineData("ilgpu-cpu", "bf16")]
    [InlineData("cpu", "fp8")]
    public void PrecisionACpuDeviceCannotComputeIsAUsageError(string device, string precision)
    {
        var r = CliProcess.Run(Forward("--device", device, "--precision", precision));
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains(precision, r.Stderr);
    }

    [Fact]
    public void WorkerWithUnknownDeviceIsAUsageError()
    {
        var r = CliProcess.Run("worker", "--ledger", "sqlite:" + Path.Combine(_dir.FullName, "l.sqlite"), "--device", "bogus");
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
    }

    [Fact]
    public void RunWithUnknownDeviceIsAUsageError()
    {
        var r = CliProcess.Run("run", "--config", Path.Combine(_dir.FullName, "none.json"), "--devices", "cuda:0,bogus");
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        var both = CliProcess.Run("run", "--config", Path.Combine(_dir.FullName, "none.json"), "--devices", "cpu", "--workers", "2");
        Assert.True(both.ExitCode == 2, $"exit {both.ExitCode}: {both.Stderr}");
    }

    [Fact]
    public void DoctorReportsTheGpuSection()
    {
        var r = CliProcess.Run("doctor", "--threads", "1");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("cpu backend", r.Stdout);
        Assert.Contains("gpu:", r.Stdout);
        if (HasCuda)
        {
            Assert.Contains("cuda:0", r.Stdout);
            Assert.Contains("cuBLAS", r.Stdout);
        }
        else
        {
            Assert.Contains("not usable:", r.Stdout);
        }
    }

    [Fact]
    public void DoctorForACudaDeviceExitsThreeWithWhatIsMissing()
    {
        var r = CliProcess.Run("doctor", "--device", "cuda:0");
        if (HasCuda)
        {
            // a usable GPU: nothing is missing, and the device ran a kernel and a product with the right numbers
            Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains("cuda:0: ready", r.Stdout);
            return;
        }
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("libcuda", r.Stdout + r.Stderr);
        Assert.Contains("gpu:", r.Stdout);
    }

    [Fact]
    public void DoctorRunsKernelsOnTheDeviceAskedFor()
    {
        var r = CliProcess.Run("doctor", "--device", "ilgpu-cpu", "--threads", "1");
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("ilgpu-cpu: ready (a kernel and a matrix product ran and gave the right numbers)", r.Stdout);
    }

    [Fact]
    public void DoctorWithUnknownDeviceIsAUsageError() => Assert.Equal(2, CliProcess.Run("doctor", "--device", "tpu").ExitCode);

    /// <summary>
    /// The CUDA backend's kernels on ILGPU's CPU accelerator, through <c>forward</c>, against the official model's output
    /// (DiT tolerance 1e-5, fixture README). Needs every kernel DiT's forward uses on the CUDA backend.
    /// </summary>
    [Fact]
    public void ForwardRunsOnIlgpuCpu()
    {
        string input = Path.Combine(_dir.FullName, "in.npz");
        using (var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz")))
            NpzFiles.Write(_dir.FullName, "in.npz", NpzFiles.As("x", io["x"]), NpzFiles.As("t", io["t"]), NpzFiles.As("y", io["y"]));
        var r = CliProcess.Run(Forward("--device", "ilgpu-cpu", "--threads", "2"));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
        using var f = NpzArchive.Open(Path.Combine(_dir.FullName, "out.npz"));
        var e = expected["out"].ToFloat32();
        var a = f["out"].ToFloat32();
        Assert.Equal(e.Length, a.Length);
        double max = 0;
        for (int i = 0; i < e.Length; i++) max = Math.Max(max, Math.Abs((double)e[i] - a[i]));
        Assert.True(max <= 1e-5, $"max |Δ| = {max}");
    }
}
