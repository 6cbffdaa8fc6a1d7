"""The training set of a CNN that reads drawings: MNIST, its stroke-style views, and pen-drawn digits.

People draw on the page with a constant-width pen, in many hands; MNIST's
writers wrote on paper forms. :func:`drawn_training_set` gives the CNN both:

* every MNIST row, with two **views** of it (:mod:`digitlab.models.cnn.views`):
  its skeleton redrawn with a constant pen of 2-3.5 px, and the digit as an
  8x8 picture, upscaled and normalised;
* every pen-drawn digit of the training writers (:func:`digitlab.data.read_unipen`),
  **rendered as the page renders strokes** (:func:`digitlab.pen.render_digits`:
  ``preprocess.render_strokes`` on a 280 px canvas) at ``renders`` random sizes,
  positions, slants, rotations, aspects and pen widths (6-40 px, the page's
  slider), the first render as the row and the others as its views.

``CNNClassifier.fit(X, y, views=V)`` then shows each row, each time it is put
in a batch, as itself or one of its views, uniformly at random. The views are
computed once, before the fit, on ``n_jobs`` processes.

:func:`calibration_set` draws the calibration writers' digits once, as the
page does by default (70 % of the canvas high, centred, the 20 px pen): the
temperature of the bundled model is fitted on them.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from digitlab.data.unipen import PenDigits
from digitlab.pen import CALIBRATION_WRITERS, KEPT_OUT_WRITERS, Placement, render_digits

__all__ = ["DrawnTrainingSet", "calibration_set", "drawn_training_set", "pen_sha256"]

#: Seeds of the random draws (fixed, so a recipe is reproducible): pen render i uses RENDER_SEED + i.
RENDER_SEED, STROKE_SEED, LOWRES_SEED = 100, 1000, 2000
#: Pen widths of the constant-pen redraw of MNIST, in 28x28 pixels (MNIST's own strokes are 2-3 px wide).
REDRAW_PEN = (2.0, 3.5)


@dataclass(frozen=True)
class DrawnTrainingSet:
    """What :func:`drawn_training_set` built.

    Attributes
    ----------
    X : ndarray of uint8, shape (n, 784)
        MNIST rows, then pen rows (their first render).
    y : ndarray of int64, shape (n,)
    views : ndarray of uint8, shape (renders - 1, n, 784)
        For MNIST rows: the constant-pen redraw, the low-resolution view, then the
        row itself for any further view; for pen rows: their other renders.
    n_mnist, n_pen : int
    writers : tuple of int
        The pen writers trained on.
    seconds : float
        Wall time of building the views and renders.
    """

    X: NDArray[np.uint8]
    y: NDArray[np.int64]
    views: NDArray[np.uint8]
    n_mnist: int
    n_pen: int
    writers: tuple[int, ...]
    seconds: float
    info: dict[str, object] = field(default_factory=dict)


def pen_sha256(path: str | Path) -> str:
    """sha256 of a pen data file as stored (the ``.gz`` itself when compressed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mnist_views(job: tuple[NDArray[np.uint8], int, int]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The two views of one chunk of MNIST rows (run in a worker process)."""
    from digitlab.models.cnn.views import lowres_variants, stroke_variants

    x, chunk, n_chunks = job
    strokes = stroke_variants(x, np.random.default_rng([STROKE_SEED, chunk, n_chunks]), pen=REDRAW_PEN)
    lowres = lowres_variants(x, np.random.default_rng([LOWRES_SEED, chunk, n_chunks]))
    return strokes, lowres


def _pen_renders(job: tuple[Sequence[Sequence[NDArray[np.float64]]], int]) -> NDArray[np.uint8]:
    strokes, i = job
    return render_digits(strokes, rng=np.random.default_rng(RENDER_SEED + i))


def _run(tasks: Sequence[tuple[Callable[[Any], Any], Any]], n_jobs: int) -> Iterator[Any]:
    """``fn(job)`` of every task, in order: on ``n_jobs`` spawned worker processes, or here when 1."""
    if n_jobs <= 1:
        for fn, job in tasks:
            yield fn(job)
        return
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(fn, job) for fn, job in tasks]
        for future in futures:
            yield future.result()


def drawn_training_set(mnist_x: NDArray[np.uint8], mnist_y: NDArray[np.int64], pen: PenDigits, *,
                       renders: int = 4, exclude_writers: Sequence[int] = (*CALIBRATION_WRITERS, *KEPT_OUT_WRITERS),
                       n_jobs: int = 2, progress: Callable[[str, int, int], None] | None = None,
                       ) -> DrawnTrainingSet:
    """MNIST with its stroke-style views, and the pen digits of the training writers as the page renders them.

    Parameters
    ----------
    mnist_x : ndarray of uint8, shape (n, 28, 28) or (n, 784)
    mnist_y : ndarray of int, shape (n,)
    pen : PenDigits
        Pen-drawn digits with writer ids (:func:`digitlab.data.read_unipen`).
    renders : int, default=4
        Renders of each pen digit (>= 3: MNIST rows need two views).
    exclude_writers : sequence of int, default=CALIBRATION_WRITERS + KEPT_OUT_WRITERS
        Pen writers not trained on (a writer fold, for validation).
    n_jobs : int, default=2
        Worker processes for the views and renders (1: in this process).
    progress : callable, optional
        ``progress("views", done, total)`` as chunks finish.

    Returns
    -------
    DrawnTrainingSet
    """
    if renders < 3:
        raise ValueError(f"renders must be >= 3 (MNIST rows need two views), got {renders}")
    start = time.perf_counter()
    report = progress or (lambda *a: None)
    mx = np.ascontiguousarray(mnist_x, dtype=np.uint8).reshape(-1, 28, 28)
    my = np.asarray(mnist_y, dtype=np.int64)
    keep = ~np.isin(pen.writers, np.asarray(list(exclude_writers), dtype=np.int64))
    strokes = [pen.strokes[i] for i in np.flatnonzero(keep)]
    n_chunks = max(1, min(4 * n_jobs, len(mx) // 500 or 1))
    chunks = np.array_split(np.arange(len(mx)), n_chunks)
    mnist_jobs = [(mx[c], k, n_chunks) for k, c in enumerate(chunks)]
    pen_jobs = [(strokes, i) for i in range(renders)]
    tasks: list[tuple[Callable[[Any], Any], Any]] = ([(_pen_renders, job) for job in pen_jobs]
                                                     + [(_mnist_views, job) for job in mnist_jobs])
    report("views", 0, len(tasks))
    results = []
    for done, result in enumerate(_run(tasks, n_jobs), start=1):
        results.append(result)
        report("views", done, len(tasks))
    rendered, parts = results[:len(pen_jobs)], results[len(pen_jobs):]
    redrawn = np.concatenate([p[0] for p in parts]).reshape(-1, 784)
    lowres = np.concatenate([p[1] for p in parts]).reshape(-1, 784)
    pen_x = np.stack(rendered).reshape(renders, -1, 784)                     # (renders, n_pen, 784)
    pen_y = pen.labels[keep]
    flat = mx.reshape(-1, 784)
    mnist_views = [redrawn, lowres] + [flat] * (renders - 3)                  # renders - 1 views of each row
    views = np.stack([np.concatenate([m, pen_x[1 + j]]) for j, m in enumerate(mnist_views)])
    return DrawnTrainingSet(X=np.concatenate([flat, pen_x[0]]), y=np.concatenate([my, pen_y]), views=views,
                            n_mnist=len(mx), n_pen=len(pen_y),
                            writers=tuple(int(w) for w in np.unique(pen.writers[keep])),
                            seconds=time.perf_counter() - start)


def calibration_set(pen: PenDigits, writers: Sequence[int] = CALIBRATION_WRITERS,
                    ) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The digits of ``writers`` drawn as the page draws by default, shape (n, 784), and their labels."""
    rows = np.flatnonzero(np.isin(pen.writers, np.asarray(list(writers), dtype=np.int64)))
    x = render_digits([pen.strokes[i] for i in rows], Placement()).reshape(-1, 784)
    return x, pen.labels[rows]
