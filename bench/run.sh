#!/usr/bin/env bash
# One command per side-by-side benchmark:
#   ./bench/run.sh sgemm   our sgemm vs numpy (2048³ and DiT-XL/2 shapes)
#   ./bench/run.sh fid     Fréchet distance 2048-d vs scipy.linalg.sqrtm as ADM calls it
#   ./bench/run.sh is      Inception Score 50k × 1008 vs ADM's numpy code
#   ./bench/run.sh prc [--quick]  precision/recall 10k×10k and 50k×10k vs a numpy port of ADM's estimator
#   ./bench/run.sh inception [--batch 64]  FID Inception images/s (256→299 + network) vs the same network in python3-torch
#   ./bench/run.sh dit     DiT-S/2 batch 8 and DiT-XL/2 batch 2 forward latency vs DiT in python3-torch
#   ./bench/run.sh dydit [--model DiT-B/2] [--off 0.4]  DyDiT with ~40% of heads/groups/tokens off vs dense DiT: time ratio next to MAC ratio
#   ./bench/run.sh ledger [--quick]  shard ledger scaling: 1/2/4/8 worker processes on SQLite and a throw-away PostgreSQL, extrapolated to 64
# Options: --threads N (default: all cores), --repeat R.
set -euo pipefail
cd "$(dirname "$0")/.."
./run-eval.sh --install-only
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if [ "${1:-}" = ledger ]; then
  # No python peer: the ledger bench compares SQLite with a throw-away PostgreSQL server (initdb + pg_ctl).
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null 2>&1; then
    $sudo apt-get install -y -q postgresql >/dev/null || { $sudo apt-get update -q >/dev/null; $sudo apt-get install -y -q postgresql >/dev/null; }
  fi
else
  # The peers live in Debian's python3 (numpy, scipy); installed here for benchmarks only, never in CI.
  peers="python3-numpy python3-scipy"; check="import numpy, scipy"
  if [ "${1:-}" = inception ] || [ "${1:-}" = dit ]; then peers="$peers python3-torch"; check="$check, torch"; fi
  if ! /usr/bin/python3 -c "$check" >/dev/null 2>&1; then
    $sudo apt-get install -y -q $peers >/dev/null || { $sudo apt-get update -q >/dev/null; $sudo apt-get install -y -q $peers >/dev/null; }
  fi
fi
dotnet build bench -c Release -v quiet -nologo >/dev/null
exec dotnet bench/bin/Release/net10.0/DyDiT.Eval.Bench.dll "${@:-sgemm}"
