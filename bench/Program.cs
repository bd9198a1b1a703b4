using DyDiT.Eval.Bench;

// Side-by-side benchmarks: each prints our figure, the peer's, and the ratio.
//   DyDiT.Eval.Bench sgemm|fid|is|prc [--quick] [--threads N] [--repeat R]
string verb = args.Length > 0 ? args[0] : "sgemm";
int threads = Environment.ProcessorCount, repeat = 5;
bool quick = args.Contains("--quick");
args = args.Where(a => a != "--quick").ToArray();
for (int i = 1; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--threads": threads = int.Parse(args[i + 1]); break;
        case "--repeat": repeat = int.Parse(args[i + 1]); break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
return verb switch
{
    "sgemm" => SgemmBenchmark.Run(threads, repeat),
    "fid" => MetricsBenchmark.Fid(threads, Math.Min(repeat, 3)),
    "is" => MetricsBenchmark.Is(threads, Math.Min(repeat, 3)),
    "prc" => PrecisionRecallBenchmark.Run(threads, quick),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DyDiT.Eval.Bench sgemm|fid|is|prc [--quick] [--threads N] [--repeat R]");
    return 2;
}
