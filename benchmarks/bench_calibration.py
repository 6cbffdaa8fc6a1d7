"""Expected calibration error of every model family on MNIST test, before and after calibration.

Run: python benchmarks/bench_calibration.py [--train-size N] [--models centroid,logreg,...]

Each family is fitted as ``digitlab train`` fits it: a stratified sample of
``--train-size`` MNIST training images, of which 5 % (stratified, seeded) are
held out and only the temperature is fitted on them
(:func:`digitlab.workflows.calibration_split`,
:meth:`~digitlab.models.base.DigitClassifier.calibrate`). ECE (10 bins) and
the mean probability of the predicted class are measured on all 10,000
MNIST test images with the model as ``fit`` left it ("before") and
calibrated ("after"); the accuracy is the same for both. The bundled CNN was
trained on every training image, so no MNIST image is held out for it: its
row is as shipped (the pen-data model fits its temperature on held-out writers).
Writes section ``calibration`` of BENCHMARKS.md after each model.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _report import table, write_section
from digitlab.data import load_mnist
from digitlab.data.select import stratified_sample
from digitlab.evaluate import evaluate
from digitlab.models import make_model
from digitlab.workflows import CALIBRATION_FRACTION, calibration_split

#: (label, CLI name, params)
RUNS = [
    ("centroid", "centroid", {}),
    ("logreg", "logreg", {}),
    ("logreg ovr", "logreg", {"multi_class": "ovr"}),
    ("sgd digit=0", "sgd", {"digit": 0}),
    ("svm-linear", "svm-linear", {}),
    ("svm-rbf", "svm-rbf", {}),
    ("svm-poly", "svm-poly", {}),
    ("svm-sigmoid", "svm-sigmoid", {}),
    ("trees", "trees", {}),
    ("dpmm (2s and 3s)", "dpmm", {}),
    ("dpmm (all digits)", "dpmm", {"digits": None, "chains": 2}),
]
TARGET = 0.03
NOTE = ("\n\n"
        "The mixture of 2s and 3s is sharpened to 99.97 % sure on average: it is 98 % right, and its hold-out"
        " (the 2s and 3s among the 500 images, about a hundred) holds hardly a mistake, so even with Platt's "
        "smoothed targets the Brier score asks for certainty; its ECE is still within the target. svm-rbf's "
        "own fit-time temperature (fitted on 1,000 images held out of its SVC) was a little better than the "
        "500-image one.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--models", default="")
    args = parser.parse_args()
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    x, y = load_mnist(split="train")
    xt, yt = load_mnist(split="test")
    keep = stratified_sample(y, args.train_size, 0)
    x, y = x[keep].reshape(len(keep), -1), y[keep]
    rows: list[list[object]] = []

    def write() -> None:
        body = (f"{args.train_size:,} stratified MNIST training images per family, {CALIBRATION_FRACTION:.0%} of "
                "them held out (stratified, seed 0) to fit one temperature; ECE over 10 confidence bins on the "
                f"10,000 MNIST test images (target <= {TARGET}). 'before' is the model as fit leaves it (the "
                "SVMs with their own fit-time temperature), 'after' calibrated on the hold-out; calibration "
                "changes no prediction. The machine was shared with other engineers' jobs.\n\n"
                + table(["model", "accuracy", "ECE before", "ECE after", "mean confidence before",
                         "mean confidence after", "temperature", "fit s"], rows) + NOTE)
        write_section("calibration", "Calibrated probabilities: expected calibration error", body)

    for label, name, params in RUNS:
        if wanted and name not in wanted and label not in wanted:
            continue
        fit_rows, cal_rows, _ = calibration_split(y, CALIBRATION_FRACTION, 0)
        est = make_model(name, **params)
        start = time.perf_counter()
        est.fit(x[fit_rows], y[fit_rows])
        seconds = time.perf_counter() - start
        before = evaluate(est, xt, yt)
        held_x, held_y = x[cal_rows], y[cal_rows]
        if name == "dpmm":  # a mixture of some digits is calibrated on those digits
            known = np.isin(held_y, est.classes_)
            held_x, held_y = held_x[known], held_y[known]
        est.calibrate(held_x, held_y)
        after = evaluate(est, xt, yt)
        rows.append([label, after.metrics["accuracy"], before.metrics["ece"], after.metrics["ece"],
                     float(before.proba.max(axis=1).mean()), float(after.proba.max(axis=1).mean()),
                     round(float(est.temperature_), 4), round(seconds, 1)])
        print(rows[-1], flush=True)
        write()
    if not wanted or "cnn" in wanted:
        from digitlab.models.io import bundled_dir, load_model

        cnn = load_model(bundled_dir()).estimator
        ev = evaluate(cnn, xt, yt)
        rows.append(["cnn (bundled, as shipped)", ev.metrics["accuracy"], ev.metrics["ece"], "(no MNIST hold-out)",
                     float(ev.proba.max(axis=1).mean()), "", round(float(cnn.temperature_), 4), ""])
        write()


if __name__ == "__main__":
    main()
