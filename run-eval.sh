#!/usr/bin/env bash
# DyDiT.Eval — the two set-up commands:
#   ./run-eval.sh          install what is missing, build (Release), run the main job on the embedded default:
#                          the demo comparison (DiT vs DyDiT 0.7 vs DyDiT 0.5 on random-weight demo models made
#                          here) on an SQLite ledger with local workers, evaluated and reported in demo/report/
#   ./run-eval.sh RUN.json run that comparison instead (e.g. configs/runs/fid50k-256.json with the official files)
#   ./run-eval.sh test     same install, then the whole test suite (add --quick to skip the >4 GiB tests)
# Internal: ./run-eval.sh --install-only (used by bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")"

mode=main
quick=0
spec=""
for a in "$@"; do
  case "$a" in
    test) mode=test ;;
    --install-only) mode=install ;;
    --quick) quick=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *.json) spec="$a" ;;
    *) echo "run-eval.sh: unknown argument '$a' (use: ./run-eval.sh [RUN.json | test [--quick]])" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ---- install what is missing (Debian packages) ----
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "need root (or sudo) to run: apt-get install -y $*" >&2; exit 3; fi
  fi
  say "installing $* (apt)"
  if ! $sudo apt-get install -y -q "$@" >/tmp/dydit-apt.log 2>&1; then
    $sudo apt-get update -q >>/tmp/dydit-apt.log 2>&1 || true
    $sudo apt-get install -y -q "$@" >>/tmp/dydit-apt.log 2>&1 || { cat /tmp/dydit-apt.log >&2; echo "apt-get install $* failed" >&2; exit 3; }
  fi
}

need=()
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0' || need+=(libopenblas0-pthread)
if [ "$mode" != main ]; then
  /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need+=(python3-numpy)
  # independent PNG checkers for the report's grid.png tests (PIL decodes every pixel, pngcheck the chunks)
  /usr/bin/python3 -c 'import PIL.Image' >/dev/null 2>&1 || need+=(python3-pil)
  command -v pngcheck >/dev/null 2>&1 || need+=(pngcheck)
fi
if [ "$mode" = test ]; then
  # The ledger tests start a throw-away PostgreSQL server (initdb + pg_ctl), so its server binaries must be there.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
fi
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "the .NET 10 SDK is required (dotnet not found on PATH): https://dotnet.microsoft.com/download" >&2
  exit 3
fi
[ "$mode" = install ] && exit 0

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if [ "$mode" = test ]; then
  say "building and testing (Release)"
  filter=()
  [ $quick = 1 ] && filter=(--filter "Category!=Large")
  dotnet build DyDiT.Eval.sln -c Release -nologo -v quiet
  log=$(mktemp)
  set +e
  dotnet test DyDiT.Eval.sln -c Release --no-build -nologo "${filter[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  # One closing line over all test assemblies.
  awk -F'[,:]' '/^(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { gsub(/ /, "", $i); sub(/^(Passed|Failed)!-/, "", $i);
        if ($i == "Failed") f += $(i+1); if ($i == "Passed") p += $(i+1); if ($i == "Skipped") s += $(i+1) } }
      END { printf "Tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
  rm -f "$log"
  exit $rc
fi

say "building (Release)"
dotnet build Cli -c Release -nologo -v quiet
dydit() { dotnet Cli/bin/Release/net10.0/dydit-eval.dll "$@"; }
workers=$(( $(nproc) >= 2 ? 2 : 1 ))
start=$(date +%s)

if [ -n "$spec" ]; then
  # A real comparison: one spec file with several runs (see configs/runs/); one worker per GPU, else one CPU worker.
  [ -f "$spec" ] || { echo "run-eval.sh: $spec not found" >&2; exit 1; }
  say "running $spec"
  dydit run --config "$spec"
  outputs=$(/usr/bin/env python3 - "$spec" <<'PY' 2>/dev/null || true
import json, os, sys
p = sys.argv[1]; d = json.load(open(p)); base = os.path.dirname(os.path.abspath(p))
runs = d.get("runs", [d]); dflt = d.get("defaults", {})
print(" ".join(os.path.normpath(os.path.join(base, {**dflt, **r}["output"])) for r in runs))
PY
)
  [ -n "$outputs" ] || { echo "run-eval.sh: could not list the runs' output directories of $spec; run 'dydit-eval report --runs DIR… -o OUT' yourself" >&2; exit 1; }
  report="$(dirname "$(echo "$outputs" | cut -d' ' -f1)")/report"
  # shellcheck disable=SC2086
  dydit report --runs $outputs -o "$report"
else
  # The demo: random-weight models made here (nothing downloaded), three runs sharing one pool of workers.
  if [ ! -f demo/runs/dit-demo.json ]; then
    say "creating the demo models (random weights) in demo/"
    dydit demo init demo --force
  fi
  say "running DiT vs DyDiT λ≈0.7 vs DyDiT λ≈0.5 on the demo models ($workers local workers, SQLite ledger demo/out/ledger.sqlite)"
  dydit run --config demo/runs/dit-demo.json --config demo/runs/dydit-demo-0.7.json --config demo/runs/dydit-demo-0.5.json \
    --workers "$workers" --threads 1
  report=demo/report
  dydit report --runs demo/out/dit-demo demo/out/dydit-demo-0.7 demo/out/dydit-demo-0.5 -o "$report"
fi
say "done in $(( $(date +%s) - start )) s; the report is $report/report.html (also report.md, results.csv, grid.png)"
