"""How long digitlab takes in Jupyter: each example notebook run headless, and one sketchpad update in the kernel.

* **examples**: every ``examples/*.ipynb`` executed from a fresh kernel with nbclient (as ``.ci/run`` does
  through nbmake), its wall time and the kernel's CPU time (user + system, read from the reaped kernel
  process), and the 1-minute load average before and after, since the machine is shared.
* **sketchpad**: what the kernel does for each update the page sends while you draw (render the strokes as
  MLPaint does, predict, explain), timed by setting ``Sketchpad.strokes`` in-process: the median and 90th
  percentile over ``--updates`` drawings, for the bundled CNN (with and without its explanation) and the
  nearest-mean model. The browser's share (drawing, the message to the kernel and back) is not included.

    python benchmarks/bench_notebook.py --updates 200

MNIST comes from ``$DIGITLAB_DATA`` as for the tests; the notebooks' store goes to a temporary
``$DIGITLAB_HOME``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from _report import table, write_section

ROOT = Path(__file__).resolve().parents[1]


def _load() -> float:
    return os.getloadavg()[0]


def run_examples() -> list[list[object]]:
    import nbformat
    from nbclient import NotebookClient

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["DIGITLAB_HOME"] = home
        for path in sorted((ROOT / "examples").glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            load = _load()
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
                           ).execute()
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            cells = sum(c.cell_type == "code" for c in nb.cells)
            rows.append([path.name, cells, round(wall, 1), round(cpu, 1), f"{load:.1f} / {_load():.1f}"])
            print(rows[-1], flush=True)
    return rows


def _drawings(n: int, seed: int) -> list[list[list[tuple[float, float]]]]:
    """``n`` random one- or two-stroke scribbles of 20-60 points each on the 280 x 280 canvas."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        strokes = []
        for _ in range(int(rng.integers(1, 3))):
            k = int(rng.integers(20, 61))
            start = rng.uniform(60, 220, 2)
            walk = np.cumsum(rng.normal(0, 6, (k, 2)), axis=0) + start
            strokes.append([(float(x), float(y)) for x, y in np.clip(walk, 0, 280)])
        out.append(strokes)
    return out


def time_sketchpad(updates: int) -> list[list[object]]:
    import digitlab
    from digitlab.notebook import Sketchpad

    x, y = digitlab.load_mnist(split="train")
    cnn = digitlab.load_model(digitlab.bundled_dir(), name="default")
    centroid = digitlab.make_model("centroid").fit(x, y)
    rows: list[list[object]] = []
    for label, model, explain in (("cnn (bundled default)", cnn, True), ("cnn (bundled default)", cnn, False),
                                  ("centroid", centroid, True)):
        pad = Sketchpad(model=model, explain=explain)
        drawings = _drawings(updates + 5, seed=0)
        for d in drawings[:5]:  # warm up (first calls load and compile)
            pad.strokes = d
        times = []
        for d in drawings[5:]:
            t0 = time.perf_counter()
            pad.strokes = d
            times.append((time.perf_counter() - t0) * 1000)
        method = model.estimator.explanation if hasattr(model, "estimator") else model.explanation
        rows.append([label, method.replace("_", " ") if explain else "none", len(times),
                     round(float(np.median(times)), 2), round(float(np.percentile(times, 90)), 2)])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200, help="sketchpad updates timed per model")
    parser.add_argument("--no-examples", action="store_true", help="time only the sketchpad")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    pad = time_sketchpad(args.updates)
    examples = [] if args.no_examples else run_examples()
    body = ""
    if examples:
        body += ("**Example notebooks**, each run from a fresh kernel with nbclient (what `.ci/run` does with "
                 "nbmake). Kernel CPU is the kernel process's user + system time; the machine is shared by other "
                 "programs, so wall time depends on the load (1-minute load average before / after on 2 cores).\n\n")
        body += table(["notebook", "code cells", "wall s", "kernel CPU s", "load before / after"], examples) + "\n\n"
    body += ("**Sketchpad**: the kernel's work for one update from the page (render the strokes as MLPaint does, "
             f"predict, explain), timed by setting `Sketchpad.strokes` on {args.updates} random scribbles after 5 "
             "warm-up ones, torch on 1 thread. The browser's part (drawing, the message to the kernel and back) "
             "is not included.\n\n")
    body += table(["model", "explanation", "updates", "median ms", "p90 ms"], pad)
    write_section("notebook", "digitlab in Jupyter: example notebooks and sketchpad updates", body)


if __name__ == "__main__":
    main()
