#!/usr/bin/env bash
# One command for the side-by-side benchmarks: ./bench/run.sh [sgemm] [--threads N] [--repeat R]
set -euo pipefail
cd "$(dirname "$0")/.."
./run-eval.sh --install-only
dotnet build bench -c Release -v quiet -nologo >/dev/null
exec dotnet bench/bin/Release/net10.0/DyDiT.Eval.Bench.dll "${@:-sgemm}"
