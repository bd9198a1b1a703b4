"""Peers for the metric benchmarks, written the way ADM's evaluator.py computes them.

  fid FILE.npz   : FILE holds mu1, sigma1 (sample), mu2, sigma2 (reference); prints {"seconds", "fid"}
                   using scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False) with ADM's safeguards.
  is FILE.npz    : FILE holds logits [N,1008] float32; prints {"seconds", "inception_score"} with ADM's
                   float32 softmax and 5000-row splits.
Threads come from OPENBLAS_NUM_THREADS (set by the caller).
"""
import json
import sys
import time
import warnings

import numpy as np


def frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    from scipy import linalg
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        warnings.warn("singular product; adding eps to the diagonals")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("Imaginary component {}".format(np.max(np.abs(covmean.imag))))
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def inception_score(logits, split_size=5000):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    preds = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    scores = []
    for i in range(0, len(preds), split_size):
        part = preds[i:i + split_size]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return float(np.mean(scores))


def main():
    verb, path = sys.argv[1], sys.argv[2]
    data = np.load(path)
    t0 = time.perf_counter()
    if verb == "fid":
        value = frechet(data["mu1"], data["sigma1"], data["mu2"], data["sigma2"])
        key = "fid"
    else:
        value = inception_score(data["logits"])
        key = "inception_score"
    print(json.dumps({"seconds": time.perf_counter() - t0, key: value}))


if __name__ == "__main__":
    main()
