"""GPU check: every public network, sampler-trace and Inception fixture through the real CLI on one device, in fp32.

Prints, per fixture array, the max |difference| next to the tolerance of fixtures/README.md (the same rules the test
suite applies on cpu and ilgpu-cpu), then PASS/FAIL; exit status 1 if any fixture fails. Called by bench/gpu-check.sh;
runs anywhere the CLI runs:
  python3 bench/gpu_check.py --fixtures DIR --device cuda:0 --cli bash .gpu/run.sh dydit-eval
  python3 bench/gpu_check.py --fixtures ../shared/fixtures --device ilgpu-cpu --cli dotnet Cli/bin/Release/net10.0/dydit-eval.dll
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

results = []


def report(name, diff, limit, note=""):
    ok = bool(diff <= limit)
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name:<58} max|Δ| {diff:9.2e}  limit {limit:8.1e}  {note}", flush=True)


def exact(name, expected, actual):
    same = expected.shape == actual.shape and np.array_equal(expected, actual)
    results.append(same)
    print(f"{'PASS' if same else 'FAIL'}  {name:<58} {'identical' if same else 'DIFFERENT'}", flush=True)


def max_diff(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


class Cli:
    def __init__(self, prefix, device, work):
        self.prefix, self.device, self.work = prefix, device, work

    def run(self, *args):
        t0 = time.perf_counter()
        p = subprocess.run(self.prefix + list(args) + ["--device", self.device], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"FAIL  {' '.join(args[:3])}: exit {p.returncode}\n{p.stderr[-3000:]}", flush=True)
            results.append(False)
            return None
        return time.perf_counter() - t0

    def path(self, name):
        return os.path.join(self.work, name)


def transformers(cli, fx):
    # (net, folder, stem, cfg keys): forward on x, t, y → out; forward_with_cfg on cfg_x, cfg_t, cfg_y (+ scale) → cfg out
    cases = [("dit", "dit", "dit_tiny", [("cfg_out", None)]),
             ("dit", "dit", "dit_tiny_p4", [("cfg_out", None)]),
             ("dydit", "dydit", "dydit_tiny", [("cfg1.5_out", 1.5), ("cfg4_out", 4.0)]),
             ("sparsedit", "sparsedit", "sparsedit_tiny", [("cfg_out", None)]),
             ("sparsedit", "sparsedit", "sparsedit_tiny_sin", [("cfg_out", None)]),
             ("sparsedit", "sparsedit", "sparsedit_tiny_relat", [("cfg_out", None)])]
    for net, folder, stem, cfgs in cases:
        io = np.load(os.path.join(fx, folder, stem + "_io.npz"))
        model = [os.path.join(fx, folder, stem + ".json"), os.path.join(fx, folder, stem + ".pt")]
        inp, out = cli.path(stem + "_in.npz"), cli.path(stem + "_out.npz")
        np.savez(inp, x=io["x"], t=io["t"], y=io["y"])
        if cli.run("forward", "--net", net, "--config", model[0], "--checkpoint", model[1], "--inputs", inp, "-o", out) is None:
            continue
        got = np.load(out)
        report(f"{folder}/{stem}_io.npz out", max_diff(io["out"], got["out"]), 1e-5)
        if net == "dydit":
            for k in ("attn_masks", "mlp_masks", "token_select"):
                exact(f"{folder}/{stem}_io.npz {k}", io[k].astype(np.float32), got[k].astype(np.float32))
        for key, scale in cfgs:
            scale = float(io["cfg_scale"]) if scale is None else scale
            np.savez(inp, x=io["cfg_x"], t=io["cfg_t"], y=io["cfg_y"], cfg_scale=np.float32(scale))
            if cli.run("forward", "--net", net, "--config", model[0], "--checkpoint", model[1], "--inputs", inp, "-o", out) is None:
                continue
            report(f"{folder}/{stem}_io.npz {key}", max_diff(io[key], np.load(out)["out"]), 3e-5)


def vae(cli, fx):
    io = np.load(os.path.join(fx, "vae", "vae_tiny_io.npz"))
    inp, out = cli.path("z.npz"), cli.path("vae_out.npz")
    np.savez(inp, z=io["z"])
    if cli.run("forward", "--net", "vae", "--checkpoint", os.path.join(fx, "vae", "vae_tiny"), "--inputs", inp, "-o", out) is None:
        return
    got = np.load(out)
    report("vae/vae_tiny_io.npz decoded", max_diff(io["decoded"], got["decoded"]), 3e-5)
    u = np.abs(io["uint8_hwc"].astype(np.int32) - got["uint8_hwc"].astype(np.int32))
    flips = int(np.count_nonzero(u))
    ok = u.max() <= 1 and flips <= 0.001 * u.size
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {'vae/vae_tiny_io.npz uint8_hwc':<58} max|Δ| {u.max()}, {flips} of {u.size} values off by one (limit 0.1 %)", flush=True)


def traces(cli, fx):
    # replay of the recorded noise (sample --noise): labels and every step's noise come from the trace
    cases = [("diffusion", "trace_cfg4_N10.npz", "dit/dit_tiny", 4.0, "ddpm", None),
             ("diffusion", "trace_cfg1.5_N10.npz", "dit/dit_tiny", 1.5, "ddpm", None),
             ("diffusion", "trace_nocfg_N10.npz", "dit/dit_tiny", 1.0, "ddpm", None),
             ("diffusion", "trace_ddim_cfg4_N10.npz", "dit/dit_tiny", 4.0, "ddim", None),
             ("dydit", "dydit_tiny_trace.npz", "dydit/dydit_tiny", 1.5, "ddpm", "dydit"),
             ("sparsedit", "sparsedit_tiny_trace_cfg1.5_N10.npz", "sparsedit/sparsedit_tiny", 1.5, "ddpm", "sparsedit"),
             ("sparsedit", "sparsedit_tiny_trace_ddim_cfg4_N10.npz", "sparsedit/sparsedit_tiny", 4.0, "ddim", "sparsedit")]
    for folder, trace, model, cfg, sampler, net in cases:
        path = os.path.join(fx, folder, trace)
        expected = np.load(path)["samples"]
        out = cli.path("latents.npz")
        args = ["sample", "--model", os.path.join(fx, model + ".json"), "--checkpoint", os.path.join(fx, model + ".pt"),
                "--noise", path, "--cfg-scale", str(cfg), "--steps", "10", "--num-samples", str(expected.shape[0]),
                "--sampler", sampler, "--latents", "--precision", "fp32", "-o", out]
        if net:
            args += ["--net", net]
        if cli.run(*args) is None:
            continue
        ref = float(np.max(np.abs(expected)))
        report(f"{folder}/{trace} samples", max_diff(expected, np.load(out)["latents"]), 1e-5 * ref, f"(1e-5 · max|ref| {ref:.1f})")


def inception(cli, fx):
    weights = cli.path("pt_inception_fixture_zip.pth")
    with gzip.open(os.path.join(fx, "inception", "pt_inception_fixture_zip.pth.gz")) as src, open(weights, "wb") as dst:
        shutil.copyfileobj(src, dst)
    io = np.load(os.path.join(fx, "inception", "inception_io.npz"))
    for path, images, mode in (("adm299", "images_299", "adm"), ("ptfid299", "images_299", "pytorch-fid"),
                               ("adm256", "images_256", "adm"), ("ptfid256", "images_256", "pytorch-fid")):
        inp, out = cli.path("images.npz"), cli.path("features.npz")
        np.savez(inp, arr_0=io[images])
        if cli.run("forward", "--net", "inception", "--checkpoint", weights, "--inputs", inp, "--preprocess", mode, "-o", out) is None:
            continue
        got = np.load(out)
        report(f"inception/inception_io.npz {path}_pool", max_diff(io[path + "_pool"], got["pool"]), 1e-3)
        report(f"inception/inception_io.npz {path}_spatial", max_diff(io[path + "_spatial"], got["spatial"]), 1e-3)
        report(f"inception/inception_io.npz {path}_logits_unbiased", max_diff(io[path + "_logits_unbiased"], got["logits"]), 3e-3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--only", default="transformers,vae,traces,inception")
    ap.add_argument("--cli", nargs=argparse.REMAINDER, required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="gpu-check-")
    cli = Cli(a.cli, a.device, work)
    print(f"fixtures through `{' '.join(a.cli)} … --device {a.device}` (fp32), tolerances of fixtures/README.md", flush=True)
    t0 = time.perf_counter()
    for part in a.only.split(","):
        globals()[part](cli, a.fixtures)
    shutil.rmtree(work, ignore_errors=True)
    failed = results.count(False)
    print(f"gpu-check: {len(results) - failed} passed, {failed} failed ({time.perf_counter() - t0:.0f} s)", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
