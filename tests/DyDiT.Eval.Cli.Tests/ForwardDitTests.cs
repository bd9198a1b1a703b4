using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// <c>dydit-eval forward --net dit</c> on the fixture models (official DiT models.py outputs): out ≤ 1e-5,
/// forward_with_cfg ≤ 3e-5 (fixture README), with the config given as the fixture JSON.
/// </summary>
public sealed class ForwardDitTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-forward-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs((double)expected[i] - actual[i]));
        Assert.True(max <= tolerance, $"{what}: max |Δ| = {max} > {tolerance}");
    }

    [Theory]
    [InlineData("dit_tiny", false)]
    [InlineData("dit_tiny", true)]
    [InlineData("dit_tiny_p4", false)]
    public void ForwardMatchesTheOfficialModel(string model, bool cfg)
    {
        string prefix = cfg ? "cfg_" : "";
        string input;
        using (var io = NpzArchive.Open(Fixtures.Path("dit", model + "_io.npz")))
        {
            var arrays = new List<(string, DType, long[], byte[])>
            {
                NpzFiles.As("x", io[prefix + "x"]), NpzFiles.As("t", io[prefix + "t"]), NpzFiles.As("y", io[prefix + "y"]),
            };
            if (cfg) arrays.Add(NpzFiles.As("cfg_scale", io["cfg_scale"]));
            input = NpzFiles.Write(_dir.FullName, "in.npz", [.. arrays]);
        }
        string output = Path.Combine(_dir.FullName, "out.npz");
        var r = CliProcess.Run("forward", "--net", "dit", "--config", Fixtures.Path("dit", model + ".json"),
            "--checkpoint", Fixtures.Path("dit", model + ".pt"), "--inputs", input, "-o", output);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(Fixtures.Path("dit", model + "_io.npz"));
        using var f = NpzArchive.Open(output);
        Assert.Equal(expected[cfg ? "cfg_out" : "out"].Shape, f["out"].Shape);
        AssertClose(expected[cfg ? "cfg_out" : "out"].ToFloat32(), f["out"].ToFloat32(), cfg ? 3e-5 : 1e-5, "out");
        // The executed count is the batch times the analytic per-sample count (which a Workers test pins to the
        // papers' 118.6 G for DiT-XL/2 at 256×256).
        var config = Workers.Networks.DitConfig.FromJson(File.ReadAllText(Fixtures.Path("dit", model + ".json")));
        long executed = BitConverter.ToInt64(f["macs"].ReadAllBytes());
        Assert.Equal(expected[prefix + "x"].Shape[0] * config.MultiplyAccumulatesPerSample(), executed);
    }

    /// <summary>SparseDiT (FlexDiT's models.py with longshortcut = False): out ≤ 1e-5, forward_with_cfg ≤ 3e-5.</summary>
    [Theory]
    [InlineData("sparsedit_tiny", false)]
    [InlineData("sparsedit_tiny", true)]
    [InlineData("sparsedit_tiny_sin", false)]
    [InlineData("sparsedit_tiny_relat", true)]
    public void ForwardMatchesFlexDit(string model, bool cfg)
    {
        string prefix = cfg ? "cfg_" : "";
        string input;
        using (var io = NpzArchive.Open(Fixtures.Path("sparsedit", model + "_io.npz")))
        {
            var arrays = new List<(string, DType, long[], byte[])>
            {
                NpzFiles.As("x", io[prefix + "x"]), NpzFiles.As("t", io[prefix + "t"]), NpzFiles.As("y", io[prefix + "y"]),
            };
            if (cfg) arrays.Add(NpzFiles.As("cfg_scale", io["cfg_scale"]));
            input = NpzFiles.Write(_dir.FullName, "in.npz", [.. arrays]);
        }
        string output = Path.Combine(_dir.FullName, "out.npz");
        var r = CliProcess.Run("forward", "--net", "sparsedit", "--config", Fixtures.Path("sparsedit", model + ".json"),
            "--checkpoint", Fixtures.Path("sparsedit", model + ".pt"), "--inputs", input, "-o", output);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(Fixtures.Path("sparsedit", model + "_io.npz"));
        using var f = NpzArchive.Open(output);
        AssertClose(expected[cfg ? "cfg_out" : "out"].ToFloat32(), f["out"].ToFloat32(), cfg ? 3e-5 : 1e-5, "out");
    }

    /// <summary>DyDiT (official multiply-by-mask code): masks exact, out ≤ 1e-5, forward_with_cfg ≤ 3e-5 (fixture README).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForwardMatchesDyDitWithItsMasks(bool cfg)
    {
        string prefix = cfg ? "cfg_" : "";
        string input;
        using (var io = NpzArchive.Open(Fixtures.Path("dydit", "dydit_tiny_io.npz")))
        {
            var arrays = new List<(string, DType, long[], byte[])>
            {
                NpzFiles.As("x", io[prefix + "x"]), NpzFiles.As("t", io[prefix + "t"]), NpzFiles.As("y", io[prefix + "y"]),
            };
            if (cfg) arrays.Add(("cfg_scale", DType.Float64, [], BitConverter.GetBytes(1.5)));
            input = NpzFiles.Write(_dir.FullName, "in.npz", [.. arrays]);
        }
        string output = Path.Combine(_dir.FullName, "out.npz");
        var r = CliProcess.Run("forward", "--net", "dydit", "--config", Fixtures.Path("dydit", "dydit_tiny.json"),
            "--checkpoint", Fixtures.Path("dydit", "dydit_tiny.pt"), "--inputs", input, "-o", output);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        using var expected = NpzArchive.Open(Fixtures.Path("dydit", "dydit_tiny_io.npz"));
        using var f = NpzArchive.Open(output);
        AssertClose(expected[cfg ? "cfg1.5_out" : "out"].ToFloat32(), f["out"].ToFloat32(), cfg ? 3e-5 : 1e-5, "out");
        foreach (var mask in new[] { "attn_masks", "mlp_masks", "token_select" })
        {
            Assert.Equal(expected[prefix + mask].Shape, f[mask].Shape);
            Assert.Equal(expected[prefix + mask].ToFloat32(), f[mask].ToFloat32());
        }
        Assert.True(BitConverter.ToInt64(f["macs"].ReadAllBytes()) < BitConverter.ToInt64(f["dense_macs"].ReadAllBytes()));
    }

    [Fact]
    public void MissingInputsAndUnknownConfigsAreClearErrors()
    {
        var input = NpzFiles.Write(_dir.FullName, "bad.npz", ("x", DType.Float32, [1L, 4, 8, 8], new byte[256 * 4]));
        var r = CliProcess.Run("forward", "--net", "dit", "--config", Fixtures.Path("dit", "dit_tiny.json"),
            "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"), "--inputs", input, "-o", Path.Combine(_dir.FullName, "o.npz"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("'t'", r.Stderr);
        r = CliProcess.Run("forward", "--net", "dit", "--config", "DiT-Q/7", "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"),
            "--inputs", input, "-o", Path.Combine(_dir.FullName, "o.npz"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("DiT-XL/2", r.Stderr);
    }
}
