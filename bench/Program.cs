using DyDiT.Eval.Bench;

// Side-by-side benchmarks: each prints our figure, the peer's, and the ratio.
//   DyDiT.Eval.Bench sgemm|fid|is|prc [--quick] [--threads N] [--repeat R]
//   DyDiT.Eval.Bench inception [--threads N] [--repeat R] [--batch B] [--layers 1]
//   DyDiT.Eval.Bench dit [--threads N] [--repeat R]
string verb = args.Length > 0 ? args[0] : "sgemm";
int threads = Environment.ProcessorCount, repeat = 5, batch = 64;
bool layers = false;
bool quick = args.Contains("--quick");
args = args.Where(a => a != "--quick").ToArray();
for (int i = 1; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--threads": threads = int.Parse(args[i + 1]); break;
        case "--repeat": repeat = int.Parse(args[i + 1]); break;
        case "--batch": batch = int.Parse(args[i + 1]); break;
        case "--layers": layers = args[i + 1] != "0"; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
return verb switch
{
    "sgemm" => SgemmBenchmark.Run(threads, repeat),
    "fid" => MetricsBenchmark.Fid(threads, Math.Min(repeat, 3)),
    "is" => MetricsBenchmark.Is(threads, Math.Min(repeat, 3)),
    "prc" => PrecisionRecallBenchmark.Run(threads, quick),
    "inception" => InceptionBenchmark.Run(threads, repeat, batch, layers),
    "dit" => DitBenchmark.Run(threads, repeat),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DyDiT.Eval.Bench sgemm|fid|is|prc|inception|dit [--quick] [--threads N] [--repeat R] [--batch B] [--layers 1]");
    return 2;
}
