using DyDiT.Eval.Bench;

// Side-by-side benchmarks: each prints our figure, the peer's, and the ratio.
//   DyDiT.Eval.Bench sgemm|fid|is|prc [--quick] [--threads N] [--repeat R]
//   DyDiT.Eval.Bench inception [--threads N] [--repeat R] [--batch B] [--layers 1]
//   DyDiT.Eval.Bench dit [--threads N] [--repeat R]
//   DyDiT.Eval.Bench dydit [--model DiT-XL/2|DiT-B/2|…] [--off 0.4] [--threads N] [--repeat R] [--batch 2]
//   DyDiT.Eval.Bench gpu-forward --weights DiT-XL2.pt --device cuda:0 [--batch ROWS] [--repeat R] [--precisions fp32,tf32,bf16]
//   every compute benchmark also takes [--device cpu|cuda:N|ilgpu-cpu] [--precision fp32|tf32|bf16]
//   DyDiT.Eval.Bench ledger [--quick]   (spawns itself as hidden "ledger-worker" processes)
string verb = args.Length > 0 ? args[0] : "sgemm";
// The ledger benchmark's worker processes: their own options, not the shared ones below; not in the usage text.
if (verb == "ledger-worker") return await LedgerWorker.RunAsync(args[1..]);
int threads = Environment.ProcessorCount, repeat = 5;
int? batch = null;
string model = "DiT-XL/2";
double off = 0.4;
bool layers = false;
string weights = "", precisions = "fp32,tf32,bf16";
bool quick = args.Contains("--quick");
args = args.Where(a => a != "--quick").ToArray();
for (int i = 1; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--threads": threads = int.Parse(args[i + 1]); break;
        case "--repeat": repeat = int.Parse(args[i + 1]); break;
        case "--batch": batch = int.Parse(args[i + 1]); break;
        case "--model": model = args[i + 1]; break;
        case "--off": off = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--layers": layers = args[i + 1] != "0"; break;
        case "--device": BenchDevice.Device = args[i + 1]; break;
        case "--precision": BenchDevice.Precision = DyDiT.Eval.Engine.Backends.Backends.ParsePrecision(args[i + 1]); break;
        case "--weights": weights = args[i + 1]; break;
        case "--precisions": precisions = args[i + 1]; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
return verb switch
{
    "sgemm" => SgemmBenchmark.Run(threads, repeat),
    "fid" => MetricsBenchmark.Fid(threads, Math.Min(repeat, 3)),
    "is" => MetricsBenchmark.Is(threads, Math.Min(repeat, 3)),
    "prc" => PrecisionRecallBenchmark.Run(threads, quick),
    "inception" => InceptionBenchmark.Run(threads, repeat, batch ?? 64, layers),
    "dit" => DitBenchmark.Run(threads, repeat),
    "dydit" => DyDitBenchmark.Run(threads, repeat, batch ?? 2, model, off),
    "ledger" => LedgerBenchmark.Run(quick),
    "gpu-forward" => GpuForwardBenchmark.Run(BenchDevice.Device, weights, batch ?? 64, repeat,
        precisions.Split(',').Select(DyDiT.Eval.Engine.Backends.Backends.ParsePrecision).ToList()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DyDiT.Eval.Bench sgemm|fid|is|prc|inception|dit|dydit|ledger|gpu-forward [--quick] [--threads N] [--repeat R] [--batch B] [--layers 1] [--model M] [--off F] [--device D] [--precision P] [--weights W] [--precisions P,P]");
    return 2;
}
