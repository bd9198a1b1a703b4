"""Peer for the sgemm benchmark: numpy's matmul (Debian python3-numpy, same OpenBLAS) on the same shapes.

Prints one JSON object per shape: {"m":..,"n":..,"k":..,"gflops":..,"seconds":..}.
The thread count comes from OPENBLAS_NUM_THREADS, set by the caller.
"""
import json
import sys
import time

import numpy as np


def best_seconds(fn, repeat):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    repeat = int(sys.argv[1])
    rng = np.random.default_rng(0)
    for spec in sys.argv[2:]:
        m, n, k = (int(v) for v in spec.split("x"))
        a = rng.standard_normal((m, k), dtype=np.float32)
        w = rng.standard_normal((n, k), dtype=np.float32)  # Linear weight layout: (out, in)
        out = np.empty((m, n), dtype=np.float32)
        s = best_seconds(lambda: np.matmul(a, w.T, out=out), repeat)
        print(json.dumps({"m": m, "n": n, "k": k, "seconds": s, "gflops": 2.0 * m * n * k / s / 1e9}), flush=True)


if __name__ == "__main__":
    main()
