"""Dirichlet-process mixture: 5 chains x 5 Gibbs iterations on MNIST 2s and 3s (issue: <= 20 s wall on 2 cores).

The datamicroscopes seed clustered all 14,131 2s and 3s of MNIST (train and
test together) and took 156.39 minutes. This script fits the same workload and
reports wall seconds, seconds per sweep, clusters and the joint log-likelihood
trace per chain; then it fits the 12,089 training 2s and 3s alone and measures
accuracy on the 2,042 test 2s and 3s.

Run: python benchmarks/bench_dpmm.py [--repeat 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _report import table, write_section
from digitlab.data import load_mnist
from digitlab.models.dpmm import DPMixtureClassifier

SEED_MINUTES = 156.391473516


def _load() -> float:
    return os.getloadavg()[0]


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[DPMixtureClassifier, float]:
    start = time.perf_counter()
    est = DPMixtureClassifier(digits=(2, 3), chains=5, iters=5, threshold=128, seed=seed).fit(x, y)
    return est, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=1, help="Timed fits of the seed's workload (best is reported).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    xtr, ytr = load_mnist(args.data_dir, "train")
    xte, yte = load_mnist(args.data_dir, "test")
    x_all, y_all = np.concatenate([xtr, xte]), np.concatenate([ytr, yte])

    t = time.perf_counter()  # load (or on a fresh checkout: compile) the numba kernels once
    DPMixtureClassifier(chains=1, iters=1, seed=0).fit(x_all[:50], np.full(50, 2))
    warmup = time.perf_counter() - t

    load_before = _load()
    runs = [_fit(x_all, y_all, args.seed) for _ in range(args.repeat)]
    est, wall = min(runs, key=lambda r: r[1])
    load_after = _load()
    n = est.n_train_
    rows = []
    for c, st in enumerate(est.chains_):
        rows.append([c, st.n_clusters, round(st.alpha, 2), f"{st.seconds[0]:.2f}", f"{np.mean(st.seconds[1:]):.2f}",
                     " ".join(str(m) for m in st.moves), " → ".join(f"{v / 1e6:.4f}" for v in st.loglik)])
    sweeps = len(est.chains_) * (est.iters + 1)
    alone = DPMixtureClassifier(chains=1, iters=5, seed=args.seed, n_jobs=1).fit(x_all, y_all).chains_[0]

    trained, wall_train = _fit(xtr, ytr, args.seed)
    keep = np.isin(yte, [2, 3])
    t_pred = time.perf_counter()
    accuracy = float((trained.predict(xte[keep]) == yte[keep]).mean())
    pred_seconds = time.perf_counter() - t_pred

    body = "\n".join([
        f"**Seed's workload** (all {n:,} MNIST 2s and 3s, train + test, binarised at 128; 5 chains x 5 Gibbs "
        "iterations after one sequential-initialisation pass; alpha and every pixel's Beta(a_d, b_d) "
        "resampled each sweep):",
        "",
        table(["wall s", "chain-sweeps", "wall s per chain-sweep", "speed-up vs seed (156.4 min)",
               "1-min load average before / after"],
              [[round(wall, 2), sweeps, round(wall / sweeps, 3), f"{SEED_MINUTES * 60 / wall:,.0f}x",
                f"{load_before:.2f} / {load_after:.2f}"]]),
        "",
        "Per chain (2 chains run at a time on the 2 cores, each in its own thread; seconds are each chain's own "
        "wall time, resampling included, while sharing the machine; joint log-likelihood "
        "log p(z | alpha) + log p(X | z, a, b) in millions, after the initial pass and each sweep):",
        "",
        table(["chain", "clusters", "alpha", "init pass s", "s per sweep", "points moved per sweep",
               "joint log-likelihood (1e6)"], rows),
        "",
        f"One chain alone (same data, nothing else of ours running): initial pass {alone.seconds[0]:.2f} s, "
        f"{np.mean(alone.seconds[1:]):.3f} s per sweep (resampling of alpha and the 1,568 Beta hyperparameters "
        "included).",
        "",
        f"Kernels loaded (numba cache) in {warmup:.1f} s before timing; a fresh checkout compiles them once "
        "(about 30 s) into `__pycache__`.",
        "",
        f"**Classifier**: fitted on the {trained.n_train_:,} training 2s and 3s in {wall_train:.1f} s "
        f"(clusters per chain: {', '.join(str(s.n_clusters) for s in trained.chains_)}); accuracy by cluster votes "
        f"on the {int(keep.sum()):,} test 2s and 3s: **{accuracy:.4f}** (predicted in {pred_seconds:.2f} s).",
        "",
        "Target: <= 20 s wall for the seed's workload on 2 cores (the seed: 156.4 minutes).",
    ])
    write_section("dpmm", "Dirichlet-process mixture of 2s and 3s (collapsed Gibbs)", body)
    print(body)


if __name__ == "__main__":
    main()
