#!/usr/bin/env bash
# The GPU check, one command on each side:
#   bench/gpu-check.sh          here (no GPU needed): publishes the CLI and the bench into .gpu/ with ../shared/tools/gpu-bundle,
#                               with the fixtures the check reads (.gpu/data/fixtures), then prints the device call to make.
#   bench/gpu-check.sh --run [--device cuda:0]
#                               on the GPU machine (device run with carry [".gpu"]): every public fixture of dit/, dydit/,
#                               sparsedit/, vae/, inception/ and the diffusion/ traces through the CLI on the device in fp32,
#                               max error per fixture next to its tolerance (bench/gpu_check.py); `sample --device` writing a
#                               batch, compared with the CPU's; DiT-XL/2 forward_with_cfg timing per precision (64 and 256 rows).
#                               Without a bundle it uses the local build (e.g. --device ilgpu-cpu to try the script here).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=prepare; device=cuda:0
while [ $# -gt 0 ]; do
  case "$1" in
    --run) mode=run ;;
    --device) device=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [ $mode = prepare ]; then
  fx=../shared/fixtures
  stage=$(mktemp -d)/fixtures
  mkdir -p "$stage/diffusion" "$stage/inception"
  cp -r $fx/dit $fx/dydit $fx/sparsedit $fx/vae "$stage/"
  rm -f "$stage/dit/dit_tiny_train_ckpt.pt"
  cp $fx/diffusion/trace_*.npz "$stage/diffusion/"
  cp $fx/inception/inception_io.npz $fx/inception/pt_inception_fixture_zip.pth.gz "$stage/inception/"
  ../shared/tools/gpu-bundle -p bench/DyDiT.Eval.Bench.csproj -d "$stage"
  rm -rf "$(dirname "$stage")"
  echo "device run: carry [\".gpu\"], command: bash bench/gpu-check.sh --run" >&2
  exit 0
fi

if [ -x .gpu/run.sh ] && ! command -v dotnet >/dev/null 2>&1; then
  cli=(bash .gpu/run.sh dydit-eval); bench=(bash .gpu/run.sh DyDiT.Eval.Bench); fx=.gpu/data/fixtures
else
  dotnet build Cli -c Release -nologo -v quiet >/dev/null && dotnet build bench -c Release -nologo -v quiet >/dev/null
  cli=(dotnet Cli/bin/Release/net10.0/dydit-eval.dll); bench=(dotnet bench/bin/Release/net10.0/DyDiT.Eval.Bench.dll); fx=../shared/fixtures
fi
py=python3; [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null && py=/usr/bin/python3
export PYTHONUNBUFFERED=1
status=0

echo "== doctor"
"${cli[@]}" doctor || true

echo "== fixtures on $device"
$py bench/gpu_check.py --fixtures "$fx" --device "$device" --cli "${cli[@]}" || status=1

echo "== sample --device $device writes a batch (fixture DiT + VAE, 8 samples, 20 steps, fp32), compared with --device cpu"
work=$(mktemp -d)
common=(sample --model "$fx/dit/dit_tiny.json" --checkpoint "$fx/dit/dit_tiny.pt" --vae "$fx/vae/vae_tiny" --num-samples 8 --seed 3 --steps 20 --cfg-scale 1.5)
if "${cli[@]}" "${common[@]}" --device "$device" --precision fp32 -o "$work/gpu.npz" && "${cli[@]}" "${common[@]}" --device cpu -o "$work/cpu.npz"; then
  $py - "$work/gpu.npz" "$work/cpu.npz" <<'PY' || status=1
import sys, numpy as np
g, c = np.load(sys.argv[1]), np.load(sys.argv[2])
a, b = g["arr_0"], c["arr_0"]
assert a.dtype == np.uint8 and a.shape == b.shape and a.shape[3] == 3, (a.dtype, a.shape, b.shape)
assert (g["labels"] == c["labels"]).all()
d = np.abs(a.astype(int) - b.astype(int))
print(f"batch {a.shape} uint8, labels equal; pixels differing from the CPU's: {np.count_nonzero(d)} of {d.size}, max {d.max()}")
PY
else
  status=1
fi
rm -rf "$work"

echo "== DiT-XL/2 forward_with_cfg timing per precision (random weights made by bench/peers/dit_torch.py)"
if [[ $device == cuda* ]]; then
  w=/tmp/dit-xl2-random.pt
  [ -f $w ] || OMP_NUM_THREADS=8 $py bench/peers/dit_torch.py dit 28 1152 2 16 1 1 $w >/dev/null
  for rows in 64 256; do "${bench[@]}" gpu-forward --weights $w --device "$device" --batch $rows --repeat 5 || status=1; done
else
  echo "(skipped: timing is for cuda devices)"
fi
exit $status
