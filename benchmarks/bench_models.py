"""Train and evaluate every model family on MNIST; time the seeds' own recipes on the same subsample.

Run: python benchmarks/bench_models.py [--train-size N] [--models logreg,trees,...] [--seed-size 5000]

Writes the table into BENCHMARKS.md (section ``models``) after each model,
so a partial run keeps what it measured. Predict ms per image is the median
of single-image ``predict`` calls (100 images); per 10,000 images is one
batch ``predict`` of the test set.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _report import table, write_section
from digitlab.data import load_mnist
from digitlab.data.select import stratified_sample
from digitlab.models import make_model

#: (label in the table, CLI name, params, target)
RUNS = [
    ("centroid", "centroid", {}, ">= 0.82"),
    ("logreg", "logreg", {}, ">= 0.925, <= 30 s"),
    ("logreg ovr", "logreg", {"multi_class": "ovr"}, "(seed OvR 0.9029)"),
    ("sgd digit=0", "sgd", {"digit": 0}, "acc >= 0.99, F1 >= 0.95"),
    ("svm-linear", "svm-linear", {}, ""),
    ("svm-rbf", "svm-rbf", {}, ">= 0.985, <= 300 s"),
    ("svm-poly", "svm-poly", {}, ">= 0.98, <= 300 s"),
    ("svm-sigmoid", "svm-sigmoid", {}, ""),
    ("trees", "trees", {}, ">= 0.975, <= 300 s"),
]


def bench_model(cli: str, params: dict, x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> dict:
    est = make_model(cli, **params)
    start = time.perf_counter()
    est.fit(x, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = est.predict(xt)
    batch_s = time.perf_counter() - start
    singles = []
    for i in range(100):
        t = time.perf_counter()
        est.predict(xt[i:i + 1])
        singles.append(time.perf_counter() - t)
    if hasattr(est, "binary_target"):
        from sklearn.metrics import f1_score
        truth = est.binary_target(yt)
        acc = float((pred == truth).mean())
        extra = f"F1 {f1_score(truth, pred):.4f}"
    else:
        acc = float((pred == yt).mean())
        extra = ""
    return {"accuracy": acc, "fit_s": fit_s, "ms_image": 1000 * float(np.median(singles)),
            "ms_10k": 1000 * batch_s * 10000 / len(xt), "extra": extra}


def seed_recipes(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, n: int) -> list[list[object]]:
    """The seeds' recipes against ours, trained on the same ``n``-image stratified subsample."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    idx = stratified_sample(y, n, seed=0)
    xs, ys = x[idx].reshape(len(idx), -1).astype(np.float64), y[idx]
    xt2 = xt.reshape(len(xt), -1).astype(np.float64)
    rows = []

    t = time.perf_counter()
    seed = make_pipeline(StandardScaler(), OneVsRestClassifier(SVC(kernel="rbf"))).fit(xs, ys)
    seed_acc = float((seed.predict(xt2) == yt).mean())
    seed_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = make_model("svm-rbf").fit(xs, ys)
    our_acc = float((ours.predict(xt2) == yt).mean())
    our_s = time.perf_counter() - t
    rows.append([f"SVM: StandardScaler + one-vs-rest SVC vs svm-rbf ({n} train, 10k test, fit + predict)",
                 seed_s, seed_acc, our_s, our_acc, seed_s / our_s])

    means = np.stack([xs[ys == d].mean(axis=0) for d in range(10)])
    t = time.perf_counter()
    pred = []
    for img in xt2:  # the NumPy exercise: one image, one class at a time
        dists = [np.sqrt(np.sum((img - means[d]) ** 2)) for d in range(10)]
        pred.append(int(np.argmin(dists)))
    loop_s = time.perf_counter() - t
    loop_acc = float((np.array(pred) == yt).mean())
    cen = make_model("centroid").fit(xs, ys)
    t = time.perf_counter()
    cen_acc = float((cen.predict(xt2) == yt).mean())
    cen_s = time.perf_counter() - t
    rows.append(["nearest mean: per-image Python loop vs centroid (predict 10k)", loop_s, loop_acc, cen_s, cen_acc,
                 loop_s / cen_s])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train-size", type=int, default=60000)
    ap.add_argument("--models", default=",".join(r[0] for r in RUNS), help="Comma list of table labels.")
    ap.add_argument("--seed-size", type=int, default=5000, help="Subsample for the seed-recipe comparison.")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    x, y = load_mnist(args.data_dir, "train")
    xt, yt = load_mnist(args.data_dir, "test")
    idx = stratified_sample(y, args.train_size, seed=0)
    xtr, ytr = x[idx], y[idx]
    wanted = set(args.models.split(","))
    rows: list[list[object]] = []
    cols = ["model", "test accuracy", "train s", "predict ms / image", "predict ms / 10,000", "note", "target"]
    seed_rows: list[list[object]] = []

    def write() -> None:
        body = (f"Trained on {len(ytr)} MNIST training images"
                + (" (stratified sample)" if len(ytr) < 60000 else "") + ", tested on the 10,000 test images; "
                "the machine's 2 cores were shared with other jobs, so times are upper bounds.\n\n"
                + table(cols, rows))
        if seed_rows:
            body += ("\n\nThe seeds' own recipes on the same subsample (times in s, ratio = seed time / ours):\n\n"
                     + table(["comparison", "seed s", "seed accuracy", "ours s", "our accuracy", "ratio"], seed_rows))
        write_section("models", "Model families on MNIST", body)

    for label, cli, params, target in RUNS:
        if label not in wanted:
            continue
        r = bench_model(cli, params, xtr, ytr, xt, yt)
        rows.append([label, round(r["accuracy"], 4), round(r["fit_s"], 1), round(r["ms_image"], 3),
                     round(r["ms_10k"], 1), r["extra"], target])
        print(rows[-1], flush=True)
        write()
    if args.seed_size > 0:
        seed_rows = seed_recipes(x, y, xt, yt, args.seed_size)
        for row in seed_rows:
            print(f"{row[0]}: seed {row[1]:.2f} s (acc {row[2]:.4f}), ours {row[3]:.2f} s (acc {row[4]:.4f}), "
                  f"ratio {row[5]:.1f}x", flush=True)
        write()


if __name__ == "__main__":
    main()
