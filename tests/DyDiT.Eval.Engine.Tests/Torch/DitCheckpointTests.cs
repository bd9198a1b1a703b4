using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Torch;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Torch;

/// <summary>The official-DiT fixtures: a bare state dict and a train.py-style checkpoint whose 'ema' equals it.</summary>
public sealed class DitCheckpointTests
{
    [Fact]
    public void StateDictMatchesTheDescribedKeysAndShapes()
    {
        var json = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("dit", "dit_tiny.json"))).RootElement;
        var expected = json.GetProperty("state_dict").EnumerateArray().Select(e => e.GetString()!).ToList();
        var weights = TorchCheckpoint.LoadWeights(Fixtures.Path("dit", "dit_tiny.pt"));
        var actual = weights.Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.Shape)}] {kv.Value.DType.NumpyName()}").ToList();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void TrainCheckpointYieldsEmaEqualToTheStateDict()
    {
        using var train = TorchCheckpoint.Open(Fixtures.Path("dit", "dit_tiny_train_ckpt.pt"));
        using var plain = TorchCheckpoint.Open(Fixtures.Path("dit", "dit_tiny.pt"));
        var json = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("dit", "dit_tiny.json"))).RootElement;
        var root = Assert.IsType<PyDict>(train.Root);
        Assert.Equal(json.GetProperty("train_ckpt").GetProperty("keys").EnumerateArray().Select(k => k.GetString()!), root.Keys.Cast<string>());

        var ema = train.StateDict();
        var reference = plain.StateDict();
        Assert.Equal(reference.Keys, ema.Keys);
        foreach (var (name, t) in reference)
        {
            Assert.Equal(t.Shape, ema[name].Shape);
            Assert.Equal(t.DType, ema[name].DType);
            Assert.Equal(t.ReadAllBytes(), ema[name].ReadAllBytes());
            Assert.Equal("ema/" + name, ema[name].Name);
        }

        // 'model' deliberately differs, so picking 'ema' is observable.
        var model = Assert.IsType<PyDict>(root["model"]);
        Assert.Contains(reference, kv => !kv.Value.ReadAllBytes().AsSpan().SequenceEqual(((TorchTensor)model[kv.Key]!).ReadAllBytes()));
    }

    [Fact]
    public void OptimizerStateAndArgsUnpickle()
    {
        using var train = TorchCheckpoint.Open(Fixtures.Path("dit", "dit_tiny_train_ckpt.pt"));
        var root = Assert.IsType<PyDict>(train.Root);
        var opt = Assert.IsType<PyDict>(root["opt"]);
        var state = Assert.IsType<PyDict>(opt["state"]);
        var groups = Assert.IsType<List<object?>>(opt["param_groups"]);
        var group = Assert.IsType<PyDict>(Assert.Single(groups));
        var paramIds = Assert.IsType<List<object?>>(group["params"]).Cast<long>().ToList();
        Assert.Equal(((PyDict)root["model"]!).Count, paramIds.Count);
        Assert.IsType<PyTuple>(group["betas"]);
        Assert.IsType<double>(group["lr"]);

        var modelShapes = ((PyDict)root["model"]!).Values.Cast<TorchTensor>().Select(t => string.Join(",", t.Shape)).ToList();
        Assert.NotEmpty(state);
        foreach (var (id, entry) in state)
        {
            Assert.Contains((long)id, paramIds);
            var s = Assert.IsType<PyDict>(entry);
            var avg = Assert.IsType<TorchTensor>(s["exp_avg"]);
            var avgSq = Assert.IsType<TorchTensor>(s["exp_avg_sq"]);
            Assert.Equal(avg.Shape, avgSq.Shape);
            Assert.Equal(modelShapes[paramIds.IndexOf((long)id)], string.Join(",", avg.Shape));
            Assert.Equal($"opt/state/{id}/exp_avg", avg.Name);
            Assert.All(avgSq.ToFloat32(), v => Assert.True(v >= 0)); // a second moment is never negative
        }
        Assert.IsType<PyNamespace>(root["args"]);
    }
}
