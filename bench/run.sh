#!/usr/bin/env bash
# One command per side-by-side benchmark:
#   ./bench/run.sh sgemm   our sgemm vs numpy (2048³ and DiT-XL/2 shapes)
#   ./bench/run.sh fid     Fréchet distance 2048-d vs scipy.linalg.sqrtm as ADM calls it
#   ./bench/run.sh is      Inception Score 50k × 1008 vs ADM's numpy code
#   ./bench/run.sh prc [--quick]  precision/recall 10k×10k and 50k×10k vs a numpy port of ADM's estimator
# Options: --threads N (default: all cores), --repeat R.
set -euo pipefail
cd "$(dirname "$0")/.."
./run-eval.sh --install-only
# The peers live in Debian's python3 (numpy, scipy); installed here for benchmarks only, never in CI.
if ! /usr/bin/python3 -c 'import numpy, scipy' >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -q python3-numpy python3-scipy >/dev/null || { $sudo apt-get update -q >/dev/null; $sudo apt-get install -y -q python3-numpy python3-scipy >/dev/null; }
fi
dotnet build bench -c Release -v quiet -nologo >/dev/null
exec dotnet bench/bin/Release/net10.0/DyDiT.Eval.Bench.dll "${@:-sgemm}"
