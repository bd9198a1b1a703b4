using DyDiT.Eval.Bench;

// Side-by-side benchmarks: each prints our figure, the peer's, and the ratio.
//   DyDiT.Eval.Bench sgemm [--threads N] [--repeat R]
//   DyDiT.Eval.Bench inception [--threads N] [--repeat R] [--batch B] [--layers 1]
string verb = args.Length > 0 ? args[0] : "sgemm";
int threads = Environment.ProcessorCount, repeat = 5, batch = 32;
bool layers = false;
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
    "inception" => InceptionBenchmark.Run(threads, repeat, batch, layers),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DyDiT.Eval.Bench sgemm|inception [--threads N] [--repeat R] [--batch B] [--layers 1]");
    return 2;
}
