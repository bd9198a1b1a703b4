using DyDiT.Eval.Cluster.Specs;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cluster.Tests.Specs;

/// <summary>
/// Run specs: every problem is found before anything starts and names the file and key; the run id follows the content
/// of what changes the samples (weights by bytes, not path) and nothing else.
/// </summary>
public sealed class RunSpecTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-spec-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Write(string name, string json)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, json);
        return path;
    }

    private static string F(params string[] p) => Fixtures.Path(p);

    private string Spec(string extra = "", string checkpoint = "", string name = "a.json") => Write(name, $$"""
        {"name": "tiny", "model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{(checkpoint == "" ? F("dit", "dit_tiny.pt") : checkpoint)}}",
         "vae": "{{F("vae", "vae_tiny")}}", "num_samples": 100, "output": "out"{{extra}}}
        """);

    [Fact]
    public void RelativePathsResolveAgainstTheSpecAndDefaultsApply()
    {
        var spec = RunSpec.Load(Spec());
        Assert.Equal(Path.Combine(_dir.FullName, "out"), spec.Output);
        Assert.Equal((1.5f, 250, "ddpm", "uniform", 1000, 0L), (spec.CfgScale, spec.Steps, spec.Sampler, spec.Labels, spec.ShardSize, spec.Seed));
        var again = RunSpec.FromJson(spec.ToJson(), "ledger");
        Assert.Equal(spec.ComputeRunId(), again.ComputeRunId());
        Assert.Equal(spec.Output, again.Output);
    }

    [Theory]
    [InlineData(", \"num_sampels\": 5", "unknown key 'num_sampels'")]
    [InlineData(", \"steps\": 1", "key 'steps'")]
    [InlineData(", \"sampler\": \"euler\"", "key 'sampler'")]
    [InlineData(", \"cfg_scale\": 0.5", "key 'cfg_scale'")]
    [InlineData(", \"reference\": \"ref.npz\"", "key 'reference'")]
    [InlineData(", \"inception\": \"missing.pth\"", "key 'inception'")]
    [InlineData(", \"labels\": \"labels.txt\"", "key 'labels'")]
    public void BadKeysAndMissingFilesNameTheFileAndKey(string extra, string expected)
    {
        var path = Spec(extra);
        var e = Assert.Throws<TensorFileException>(() => RunSpec.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData(", \"seed\": 1, \"seed\": 2", "key 'seed' is given twice")]
    [InlineData(", \"name\": \"tiny\"", "key 'name' is given twice")]
    [InlineData(", \"description\": {\"a\": 1, \"a\": 1}", "key 'description.a' is given twice")]
    public void KeysGivenTwiceAreRefusedNamingFileAndKey(string extra, string expected)
    {
        var path = Spec(extra);
        foreach (var load in new Action[] { () => RunSpec.Load(path), () => RunSpec.LoadAll(path) })
        {
            var e = Assert.Throws<TensorFileException>(load);
            Assert.Contains(path, e.Message);
            Assert.Contains(expected, e.Message);
        }
        var several = Write("several.json", """{"defaults": {"seed": 1, "seed": 2}, "runs": [{"name": "a"}]}""");
        Assert.Contains("key 'defaults.seed' is given twice", Assert.Throws<TensorFileException>(() => RunSpec.LoadAll(several)).Message);
    }

    [Fact]
    public void MissingCheckpointNamesIt()
    {
        var path = Spec(checkpoint: "/nonexistent/weights.pt");
        var e = Assert.Throws<TensorFileException>(() => RunSpec.Load(path));
        Assert.Contains("key 'checkpoint'", e.Message);
        Assert.Contains("/nonexistent/weights.pt", e.Message);
    }

    [Fact]
    public void RunIdFollowsContentNotPathsNamesOrBatchSizes()
    {
        string baseId = RunSpec.Load(Spec()).ComputeRunId();
        var copy = Path.Combine(_dir.FullName, "copy-of-dit.pt");
        File.Copy(F("dit", "dit_tiny.pt"), copy);
        Assert.Equal(baseId, RunSpec.Load(Spec(checkpoint: copy, name: "b.json")).ComputeRunId());
        Assert.Equal(baseId, RunSpec.Load(Spec(", \"batch_size\": 7, \"description\": \"x\"", name: "c.json")).ComputeRunId());
        Assert.NotEqual(baseId, RunSpec.Load(Spec(", \"seed\": 1", name: "d.json")).ComputeRunId());
        Assert.NotEqual(baseId, RunSpec.Load(Spec(", \"shard_size\": 10", name: "e.json")).ComputeRunId());
        var changed = Path.Combine(_dir.FullName, "changed.pt");
        var bytes = File.ReadAllBytes(copy);
        bytes[^100] ^= 1;
        File.WriteAllBytes(changed, bytes);
        Assert.NotEqual(baseId, RunSpec.Load(Spec(checkpoint: changed, name: "f.json")).ComputeRunId());
    }

    /// <summary>
    /// The numerics identity (device kind, precision, GPU architecture or CPU kernel family) is part of the id — shards of
    /// different numerics are never one run — and survives the ledger's JSON. A spec without it (a user's file, or a ledger
    /// row from before the CPU identity named its kernel family) is the legacy <c>cpu-fp32</c>, whose ids are unchanged.
    /// </summary>
    [Fact]
    public void NumericsEnterTheRunIdAndSurviveTheLedger()
    {
        var legacy = RunSpec.Load(Spec());
        Assert.Equal(RunNumerics.LegacyCpu, legacy.Numerics);
        Assert.DoesNotContain("numerics", legacy.ToJson());
        var cpu = legacy with { Numerics = RunNumerics.Cpu };
        Assert.Matches("^cpu-fp32-[a-z0-9]+-(v512|v256|v128|scalar)$", cpu.Numerics);
        Assert.Equal(cpu.Numerics, RunSpec.FromJson(cpu.ToJson(), "ledger").Numerics);
        Assert.NotEqual(legacy.ComputeRunId(), cpu.ComputeRunId());
        Assert.NotEqual(cpu.ComputeRunId(), (cpu with { Numerics = "cpu-fp32-skylakex-v512" == cpu.Numerics ? "cpu-fp32-haswell-v256" : "cpu-fp32-skylakex-v512" }).ComputeRunId());
        var tf32 = cpu with { Numerics = "cuda-tf32-sm_90" };
        var bf16 = cpu with { Numerics = "cuda-bf16-sm_90" };
        var hopperVsAmpere = cpu with { Numerics = "cuda-tf32-sm_80" };
        Assert.Equal(4, new[] { cpu, tf32, bf16, hopperVsAmpere }.Select(s => s.ComputeRunId()).Distinct().Count());
        var back = RunSpec.FromJson(tf32.ToJson(), "ledger");
        Assert.Equal("cuda-tf32-sm_90", back.Numerics);
        Assert.Equal(tf32.ComputeRunId(), back.ComputeRunId());
        Assert.Equal("ilgpu-cpu-fp32", RunNumerics.Of("ilgpu-cpu", Engine.Backends.Precision.Fp32));
        Assert.Equal(RunNumerics.Cpu, RunNumerics.Of("cpu", Engine.Backends.Precision.Fp32));
        Assert.Throws<ArgumentException>(() => RunNumerics.Of("cpu", Engine.Backends.Precision.Tf32));
    }

    [Fact]
    public void OneFileMayHoldSeveralRunsOverSharedDefaults()
    {
        var path = Write("many.json", $$"""
            {"defaults": {"model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{F("dit", "dit_tiny.pt")}}", "vae": "{{F("vae", "vae_tiny")}}",
                          "num_samples": 10, "seed": 3},
             "runs": [{"name": "a", "output": "a"}, {"name": "b", "output": "b", "seed": 4}]}
            """);
        var specs = RunSpec.LoadAll(path);
        Assert.Equal(["a", "b"], specs.Select(s => s.Name));
        Assert.Equal([3L, 4L], specs.Select(s => s.Seed));
        Assert.Equal(Path.Combine(_dir.FullName, "b"), specs[1].Output);
        var bad = Write("bad.json", """{"runs": [{"name": "a"}], "extra": 1}""");
        Assert.Contains("unknown key 'extra'", Assert.Throws<TensorFileException>(() => RunSpec.LoadAll(bad)).Message);
    }
}
