"""Digits as people draw them: pen-drawn digits of unseen writers, MNIST test and the 8x8 digits, before/after.

Pen digits: the 7,494 digits of 30 writers of ``pendigits-orig.tra.gz``
(``digitlab.data.read_unipen``), each drawn on the page's 280x280 canvas as a
user would (``digitlab.pen.to_canvas``: y flipped, 70 % of the canvas high,
centred, the page's 20 px pen) and turned into the model's input exactly as
the server turns strokes into it (``preprocess.render_strokes``).

Validation is by writer (``digitlab.pen.WRITER_FOLDS``: 5 folds of 6
writers). A model is only measured on writers it never saw:

* **before** (the bundled model of ``--before``, default the one shipped, or
  today's trained on MNIST only): every writer is unseen, so the folds are
  measured on that one model;
* **after**: ``--after MODEL`` is the candidate bundled model, measured on
  MNIST test, the 8x8 digits and the 3 kept-out writers
  (``digitlab.pen.KEPT_OUT_WRITERS``, never trained on); the folds are
  measured on fold models of the same recipe, each trained without its fold's
  six writers (``--fold-models DIR``: ``fold0`` ... ``fold4``; ``--train-folds
  EPOCHS`` trains the missing ones first, on MNIST train less a held-out 5k
  that fits their temperature, two at a time on one thread each).

Also: scikit-learn's 8x8 digits upscaled to 64x64 and normalised (as
``bench_preprocess.py``), the ten most frequent confusions (true -> read),
the expected calibration error (10 bins, ``predict_proba``) and the int8
cost of one prediction and of one explanation (median).

    python benchmarks/bench_drawings.py --before OLD --after NEW --fold-models DIR [--train-folds 4] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report
from digitlab.data import load_mnist, read_unipen
from digitlab.explain import explain
from digitlab.models.io import bundled_dir, load_model
from digitlab.pen import KEPT_OUT_WRITERS, WRITER_FOLDS, Placement, render_digits
from digitlab.preprocess import to_mnist

_ROOT = Path(__file__).resolve().parents[1]


def ece(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence over ``bins`` equal-width bins."""
    conf, right = proba.max(1), proba.argmax(1) == y
    idx = np.clip(np.digitize(conf, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    return float(sum((idx == b).mean() * abs(right[idx == b].mean() - conf[idx == b].mean())
                     for b in range(bins) if (idx == b).any()))


def confusions(y: np.ndarray, pred: np.ndarray, k: int = 10) -> str:
    c = Counter(zip(y[pred != y].tolist(), pred[pred != y].tolist(), strict=True))
    return ", ".join(f"{a}->{b} {n}" for (a, b), n in c.most_common(k)) or "none"


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    dig = load_digits()
    x = np.stack([to_mnist(Image.fromarray((im * (255 / 16)).astype(np.uint8)).resize((64, 64),
                                                                                      Image.Resampling.BILINEAR))
                  for im in dig.images])
    return x.reshape(-1, 784), dig.target


def cost_ms(est, x: np.ndarray) -> tuple[float, float]:
    """Median ms of one prediction (predict_proba of one image) and of one explanation (integrated gradients)."""
    one = x[:1]
    for _ in range(20):
        est.predict_proba(one)
    t = []
    for i in range(200):
        t0 = time.perf_counter()
        est.predict_proba(x[i:i + 1])
        t.append(time.perf_counter() - t0)
    e = []
    for i in range(20):
        t0 = time.perf_counter()
        explain(est, x[i:i + 1].reshape(28, 28))
        e.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t)), 1000 * float(np.median(e))


def _train_fold(job: tuple[int, int, Path, Path, Path]) -> str:
    """Train the recipe's fold model ``k`` (without fold k's writers) into ``out`` (run in a worker process)."""
    k, epochs, mnist_dir, pen_file, out = job
    from digitlab.models.card import ModelCard
    from digitlab.models.cnn import CNNClassifier
    from digitlab.models.cnn.drawn import drawn_training_set
    from digitlab.models.io import save_model

    x, y = load_mnist(mnist_dir, "train")
    perm = np.random.default_rng(12).permutation(len(y))           # the held-out 5k fits the temperature
    hold, train = perm[:5000], perm[5000:]
    pen = read_unipen(pen_file)
    data = drawn_training_set(x[train], y[train], pen, exclude_writers=WRITER_FOLDS[k], n_jobs=1)
    t0 = time.perf_counter()
    est = CNNClassifier(epochs=epochs, n_threads=1, seed=0).fit(data.X, data.y, views=data.views)
    est.calibrate(x[hold].reshape(-1, 784), y[hold])
    save_model(est, out, ModelCard(model="cnn", notes={"fold": k, "epochs": epochs, "views_seconds": data.seconds,
                                                       "fit_seconds": time.perf_counter() - t0}))
    return str(out)


def train_folds(fold_dir: Path, epochs: int, mnist_dir: Path, pen_file: Path) -> None:
    """Train the missing fold models of ``fold_dir``, two processes of one thread each."""
    jobs = [(k, epochs, mnist_dir, pen_file, fold_dir / f"fold{k}") for k in range(5)
            if not (fold_dir / f"fold{k}" / "card.json").exists()]
    with ProcessPoolExecutor(2) as pool:
        for done in pool.map(_train_fold, jobs):
            print(f"trained {done}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, default=None, help="model folder [default: the bundled model]")
    ap.add_argument("--after", type=Path, default=None, help="candidate bundled model folder")
    ap.add_argument("--fold-models", type=Path, default=None, help="folder of fold0..fold4 model folders")
    ap.add_argument("--train-folds", type=int, default=None, metavar="EPOCHS",
                    help="first train the fold models missing from --fold-models, for EPOCHS epochs")
    ap.add_argument("--pen", type=Path, default=None, help="pendigits-orig.tra.gz [default: beside MNIST]")
    ap.add_argument("--data-dir", type=Path, default=None, help="MNIST folder [default: $DIGITLAB_DATA]")
    ap.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = ap.parse_args()
    mnist_dir = args.data_dir or Path(os.environ.get("DIGITLAB_DATA", _ROOT.parent / "shared" / "data" / "mnist"))
    pen_file = args.pen or mnist_dir.parent / "pendigits" / "pendigits-orig.tra.gz"

    if args.train_folds is not None and args.fold_models is not None:
        train_folds(args.fold_models, args.train_folds, mnist_dir, pen_file)
    pen = read_unipen(pen_file)
    xp = render_digits(pen.strokes, Placement()).reshape(-1, 784)
    # the same digits drawn as different users would: random size, place, slant, rotation, aspect, pen 6-40 px
    xr = render_digits(pen.strokes, rng=np.random.default_rng(7)).reshape(-1, 784)
    yp, wp = pen.labels, pen.writers
    xt, yt = load_mnist(mnist_dir, "test")
    xt = xt.reshape(-1, 784)
    xs, ys = sklearn_digits()
    kept = np.isin(wp, KEPT_OUT_WRITERS)

    def measure(est, folds_from=None) -> dict:
        """Figures of ``est``; the pen folds from ``folds_from`` (k -> model) when given, else from ``est``."""
        r: dict = {}
        if folds_from is None:
            pp = est.predict_proba(xp)
            pred_p = pp.argmax(1)
            r["folds"] = [float((pred_p == yp)[np.isin(wp, f)].mean()) for f in WRITER_FOLDS]
            r["pen_conf"] = confusions(yp, pred_p)
            r["pen_ece"] = ece(pp, yp)
            r["random"] = float((est.predict(xr) == yp).mean())
        else:
            pred_p, probs, right_r = np.empty_like(yp), np.empty((len(yp), 10)), 0
            measured = np.zeros(len(yp), dtype=bool)
            for k, f in enumerate(WRITER_FOLDS):
                m = np.isin(wp, f)
                if folds_from[k] is None:  # no model trained without this fold's writers: not measured
                    continue
                measured |= m
                probs[m] = folds_from[k].predict_proba(xp[m])
                pred_p[m] = probs[m].argmax(1)
                right_r += int((folds_from[k].predict(xr[m]) == yp[m]).sum())
            r["random"] = right_r / measured.sum()
            r["folds"] = [float((pred_p == yp)[np.isin(wp, f)].mean()) if folds_from[k] is not None else float("nan")
                          for k, f in enumerate(WRITER_FOLDS)]
            r["pen_conf"] = confusions(yp[measured], pred_p[measured])
            r["pen_ece"] = ece(probs[measured], yp[measured])
        pk = est.predict_proba(xp[kept])
        r["kept"] = float((pk.argmax(1) == yp[kept]).mean())
        r["kept_ece"] = ece(pk, yp[kept])
        pt = est.predict_proba(xt)
        r["mnist"] = float((pt.argmax(1) == yt).mean())
        r["mnist_ece"] = ece(pt, yt)
        r["mnist_p_true"] = float(pt[np.arange(len(yt)), yt].mean())
        ps = est.predict(xs)
        r["sk"] = float((ps == ys).mean())
        r["sk_conf"] = confusions(ys, ps)
        r["one_ms"], r["explain_ms"] = cost_ms(est, xt)
        return r

    before = measure(load_model(args.before or bundled_dir()).estimator)
    cols = {"before": before}
    if args.after is not None:
        folds = None
        if args.fold_models is not None:
            folds = [load_model(args.fold_models / f"fold{k}").estimator
                     if (args.fold_models / f"fold{k}").exists() else None for k in range(5)]
        cols["after"] = measure(load_model(args.after).estimator, folds)
    names = list(cols)
    rows = []
    for k, f in enumerate(WRITER_FOLDS):
        rows.append([f"pen, fold {k} (writers {', '.join(map(str, f))})"]
                    + [f"{100 * c['folds'][k]:.2f}%" for c in cols.values()])
    rows.append(["pen, mean of the folds (min)"]
                + [f"{100 * np.nanmean(c['folds']):.2f}% ({100 * np.nanmin(c['folds']):.2f}%)" for c in cols.values()])
    rows.append(["pen, folds, drawn at random sizes, places, slants, pens"]
                + [f"{100 * c['random']:.2f}%" for c in cols.values()])
    rows.append([f"pen, kept-out writers {', '.join(map(str, KEPT_OUT_WRITERS))}"]
                + [f"{100 * c['kept']:.2f}%" for c in cols.values()])
    rows.append(["MNIST test"] + [f"{100 * c['mnist']:.2f}%" for c in cols.values()])
    rows.append(["scikit-learn 8x8 digits, upscaled"] + [f"{100 * c['sk']:.2f}%" for c in cols.values()])
    rows.append(["ECE, pen folds (unseen writers)"] + [f"{c['pen_ece']:.4f}" for c in cols.values()])
    rows.append(["ECE, kept-out writers"] + [f"{c['kept_ece']:.4f}" for c in cols.values()])
    rows.append(["ECE, MNIST test (mean p(true))"]
                + [f"{c['mnist_ece']:.4f} ({c['mnist_p_true']:.3f})" for c in cols.values()])
    rows.append(["one prediction / one explanation (ms, median)"]
                + [f"{c['one_ms']:.2f} / {c['explain_ms']:.1f}" for c in cols.values()])
    conf = [[f"{n}: pen digits (folds)", cols[n]["pen_conf"]] for n in names]
    conf += [[f"{n}: 8x8 digits", cols[n]["sk_conf"]] for n in names]
    body = (_report.table(["measure", *names], rows) + "\n\nTen most frequent confusions (true->read count):\n\n"
            + _report.table(["model, set", "confusions"], conf))
    print(body)
    if args.write:
        _report.write_section("drawings", "Digits as people draw them (pen digits of unseen writers)", body)


if __name__ == "__main__":
    main()
