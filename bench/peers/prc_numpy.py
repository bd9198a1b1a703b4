"""Peer for the precision/recall benchmark: ADM's ManifoldEstimator (evaluator.py) in numpy.

  prc FILE.npz : FILE holds ref [Nr,D] and sample [Ns,D] float32; prints {"seconds", "precision", "recall",
                 "peak_rss_mb"}.

Same structure as ADM: row and column batches of 10000, a [10000, N] float32 distance buffer per row batch,
np.partition for the k=3 radius, `<=` membership per block. Distances are float32 here (numpy has no fast fp16
matmul; ADM's TensorFlow graph runs its fp16 block on a GPU), which is the cheapest faithful CPU rendering of it.
Threads come from OPENBLAS_NUM_THREADS (set by the caller).
"""
import json
import resource
import sys
import time

import numpy as np

BATCH = 10000
K = 3


def distances(u, v):
    norm_u = np.sum(np.square(u), axis=1, keepdims=True)
    norm_v = np.sum(np.square(v), axis=1, keepdims=True).T
    return np.maximum(norm_u - 2 * (u @ v.T) + norm_v, 0.0)


def manifold_radii(features):
    n = len(features)
    radii = np.zeros([n], dtype=np.float32)
    buffer = np.zeros([BATCH, n], dtype=np.float32)
    for b1 in range(0, n, BATCH):
        e1 = min(b1 + BATCH, n)
        rows = features[b1:e1]
        for b2 in range(0, n, BATCH):
            e2 = min(b2 + BATCH, n)
            buffer[0:e1 - b1, b2:e2] = distances(rows, features[b2:e2])
        radii[b1:e1] = np.partition(buffer[0:e1 - b1, :], np.arange(K + 1), axis=1)[:, K]
    return radii


def evaluate_pr(ref, radii_ref, sample, radii_sample):
    ref_in = np.zeros([len(ref)], dtype=bool)
    sample_in = np.zeros([len(sample)], dtype=bool)
    for b1 in range(0, len(ref), BATCH):
        e1 = min(b1 + BATCH, len(ref))
        for b2 in range(0, len(sample), BATCH):
            e2 = min(b2 + BATCH, len(sample))
            d = distances(ref[b1:e1], sample[b2:e2])
            ref_in[b1:e1] |= np.any(d <= radii_sample[None, b2:e2], axis=1)
            sample_in[b2:e2] |= np.any(d <= radii_ref[b1:e1, None], axis=0)
    return float(np.mean(sample_in.astype(np.float64))), float(np.mean(ref_in.astype(np.float64)))


def main():
    data = np.load(sys.argv[2])
    ref, sample = data["ref"], data["sample"]
    t0 = time.perf_counter()
    radii_ref = manifold_radii(ref)
    radii_sample = manifold_radii(sample)
    precision, recall = evaluate_pr(ref, radii_ref, sample, radii_sample)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "precision": precision, "recall": recall, "peak_rss_mb": peak}))


if __name__ == "__main__":
    main()
