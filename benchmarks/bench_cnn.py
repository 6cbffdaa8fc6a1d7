"""CNN figures for BENCHMARKS.md: fast-recipe accuracy and training time, default-recipe figures,
prediction and explanation latency.

    python benchmarks/bench_cnn.py            # trains "fast"; default-recipe figures read from the bundled card
    python benchmarks/bench_cnn.py --full     # also trains the default recipe (about 15 minutes on 2 cores)

Needs MNIST in $DIGITLAB_DATA. Run with ``nice`` on a shared machine; the load
average at the start is printed with the figures.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import table, write_section
from digitlab.data import load_mnist
from digitlab.explain import explain
from digitlab.models.cnn import CNNClassifier
from digitlab.models.io import bundled_dir, load_model


def _median_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _train(recipe: str, seed: int, data: tuple) -> tuple[float, float, CNNClassifier]:  # type: ignore[type-arg]
    x, y, xt, yt = data
    t0 = time.perf_counter()
    est = CNNClassifier(recipe=recipe, seed=seed).fit(x, y)
    seconds = time.perf_counter() - t0
    return float((est.predict(xt) == yt).mean()), seconds, est


def _setup(cfg: dict) -> str:  # type: ignore[type-arg]
    return (f"width {cfg['width']}, depth {cfg.get('depth', 1)}, {cfg['epochs']} epochs, "
            f"augmentation {cfg['augment']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="train the default recipe too instead of reading the card")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()

    load = os.getloadavg()[0]
    x, y = load_mnist(None, "train")
    xt, yt = load_mnist(None, "test")
    data = (x, y, xt, yt)

    rows = []
    acc, secs, fast = _train("fast", args.seed, data)
    rows.append(["fast", f"{acc:.2%}", f"{secs:.0f}", "trained by this run", _setup(fast.config_)])
    print(f"fast: accuracy={acc:.4f} train_seconds={secs:.1f}", flush=True)

    bundled = load_model(bundled_dir())
    if args.full:
        acc, secs, full = _train("default", args.seed, data)
        source = "trained by this run"
    else:
        card = bundled.card
        acc, secs, full = card.test_accuracy or float("nan"), card.train_seconds or float("nan"), bundled.estimator
        source = f"from the bundled model's card (`{card.command}`)"
    rows.append(["default", f"{acc:.2%}", f"{secs:.0f}", source, _setup(full.config_)])
    print(f"default: accuracy={acc:.4f} train_seconds={secs:.1f} ({source})", flush=True)

    est = bundled.estimator
    one = xt[:1].reshape(1, 784)
    engines = []  # the same network, predicting in int8 (what digitlab uses) and in PyTorch, side by side
    for label, e in [("int8, ONNX Runtime (default)", est),
                     ("PyTorch, bfloat16 where supported (`int8=False`)", copy.copy(est).set_params(int8=False))]:
        single = _median_ms(lambda: e.predict(one), 200)  # noqa: B023 - called at once
        batch = _median_ms(lambda: e.predict(xt), 3)      # noqa: B023
        accuracy = float((e.predict(xt) == yt).mean())
        engines.append([label, f"{accuracy:.2%}", f"{single:.2f}", f"{batch:.0f}"])
        print(f"{label}: accuracy={accuracy:.4f} predict one={single:.2f} ms, 10,000={batch:.0f} ms", flush=True)
    imgs = iter(np.tile(xt[:100], (10, 1, 1)))
    ig = _median_ms(lambda: explain(est, next(imgs)), 100)
    print(f"IG explanation={ig:.1f} ms", flush=True)

    body = "\n\n".join([
        "Test accuracy on the 10,000 official MNIST test images; training on the 60,000 training images "
        f"(load average {load:.1f} at the start on this shared machine).",
        table(["recipe", "test accuracy", "train seconds", "source", "setup"], rows),
        "The bundled model's predictions (median ms):",
        table(["engine", "test accuracy", "one 28x28 image", "10,000 images (one call)"], engines),
        "Explaining one image (integrated gradients of the float network, bfloat16 where supported, 32 steps, "
        f"one forward/backward): {ig:.1f} ms (median).",
    ])
    if not args.no_write:
        write_section("cnn", "CNN: accuracy, training time, prediction and explanation latency", body)


if __name__ == "__main__":
    main()
