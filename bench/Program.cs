using DyDiT.Eval.Bench;

// Side-by-side benchmarks: each prints our figure, the peer's, and the ratio.
//   DyDiT.Eval.Bench sgemm [--threads N] [--repeat R]
string verb = args.Length > 0 ? args[0] : "sgemm";
int threads = Environment.ProcessorCount, repeat = 5;
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
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DyDiT.Eval.Bench sgemm [--threads N] [--repeat R]");
    return 2;
}
