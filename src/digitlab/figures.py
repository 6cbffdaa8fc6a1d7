"""Every picture digitlab draws, and the one way it writes them.

* dataset figures (``digitlab data explore``): :func:`samples_figure`,
  :func:`mean_digits_figure`, :func:`class_distribution_figure`,
  :func:`kept_pixels_figure`;
* the learning curve (``digitlab learning-curve``): :func:`learning_curve_figure`;
* the evaluation report (``digitlab evaluate --report``): :func:`confusion_figure`,
  :func:`misclassified_figure`, :func:`probabilities_figure`, :func:`bar_figure`,
  :func:`weights_figure`;
* a per-pixel explanation (``digitlab explain``, :mod:`digitlab.explain`):
  :func:`explanation_image`, :func:`render_explanation`;
* the Dirichlet-process mixture (``digitlab dpmm``): :func:`clusters_image`,
  :func:`completions_image`.

Charts are matplotlib :class:`~matplotlib.figure.Figure` objects made with
:func:`new_figure`; pictures are RGB ``uint8`` arrays drawn with NumPy and
Pillow. Both are written as PNG by :func:`save_figure` / :func:`save_png`,
atomically and with the user's umask (:mod:`digitlab._io`). matplotlib is used
through its object-oriented API only, never ``pyplot``: drawing needs no
display, and a notebook that imports digitlab keeps its own backend.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab._io import atomic_write_bytes
from digitlab.errors import UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from digitlab.evaluate import Evaluation
    from digitlab.explain import Explanation

__all__ = [
    "bar_figure",
    "class_distribution_figure",
    "clusters_image",
    "compare_figure",
    "completions_image",
    "confusion_figure",
    "explanation_image",
    "kept_pixels_figure",
    "learning_curve_figure",
    "mean_digits_figure",
    "misclassified_figure",
    "new_figure",
    "png_bytes",
    "probabilities_figure",
    "render_explanation",
    "samples_figure",
    "save_figure",
    "save_png",
    "weights_figure",
]

_W = 28
_HIDDEN_TINT = np.array([222, 235, 255], dtype=np.float64)  # background of the predicted (hidden) pixels


# ------------------------------------------------------------------------------------------ writing


def new_figure(figsize: tuple[float, float]) -> Figure:
    """An empty matplotlib figure of ``figsize`` inches, not registered with ``pyplot``."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def png_bytes(fig: Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes, cropped to its content."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 90) -> Path:
    """Write the figure as a PNG file, atomically; returns ``path``."""
    target = Path(path)
    atomic_write_bytes(target, png_bytes(fig, dpi))
    return target


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an RGB (h, w, 3) or grey (h, w) ``uint8`` image as a PNG file, atomically; returns ``path``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    target = Path(path)
    atomic_write_bytes(target, buf.getvalue())
    return target


# ------------------------------------------------------------------------------------- the dataset


def samples_figure(images: np.ndarray, labels: np.ndarray, *, per_label: int = 10, seed: int = 0) -> Figure:
    """``per_label`` random images of every label, one row per label.

    Parameters
    ----------
    images : ndarray, shape (n, 28, 28)
    labels : ndarray, shape (n,)
    """
    rng = np.random.default_rng(seed)
    digits = sorted(int(d) for d in np.unique(labels))
    fig = new_figure((per_label, len(digits)))
    axes = fig.subplots(len(digits), per_label, squeeze=False)
    for r, d in enumerate(digits):
        idx = np.flatnonzero(labels == d)
        pick = rng.choice(idx, size=min(per_label, len(idx)), replace=False)
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(pick):
                ax.imshow(images[pick[c]], cmap="gray_r")
        axes[r][0].set_title(str(d), loc="left", fontsize=8)
    fig.suptitle("Random samples per label")
    return fig


def mean_digits_figure(images: np.ndarray, labels: np.ndarray) -> Figure:
    """The mean image of every label, in a row."""
    digits = sorted(int(d) for d in np.unique(labels))
    fig = new_figure((len(digits) * 1.2, 1.6))
    axes = fig.subplots(1, len(digits), squeeze=False)
    for ax, d in zip(axes[0], digits, strict=True):
        ax.imshow(images[labels == d].mean(axis=0), cmap="gray_r")
        ax.set_title(str(d))
        ax.axis("off")
    fig.suptitle("Mean image per digit")
    return fig


def class_distribution_figure(counts: Mapping[str, int]) -> Figure:
    """Bar chart of images per label, each bar with its count."""
    fig = new_figure((6, 3))
    ax = fig.subplots()
    ax.bar(list(counts), list(counts.values()), color="#4477aa")
    for x, n in enumerate(counts.values()):
        ax.text(x, n, str(n), ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("label")
    ax.set_ylabel("images")
    ax.set_title("Class distribution")
    return fig


def kept_pixels_figure(variance: np.ndarray, mask: np.ndarray, threshold: float) -> Figure:
    """Pixel variance beside the pixels kept by a variance threshold.

    Parameters
    ----------
    variance : ndarray, shape (784,)
    mask : ndarray of bool, shape (784,)
        ``variance > threshold``.
    """
    fig = new_figure((7, 3.4))
    a1, a2 = fig.subplots(1, 2)
    im = a1.imshow(np.asarray(variance).reshape(28, 28), cmap="viridis")
    fig.colorbar(im, ax=a1, fraction=0.046)
    a1.set_title("pixel variance")
    a2.imshow(np.asarray(mask).reshape(28, 28), cmap="gray")
    a2.set_title(f"{int(np.sum(mask))} of 784 kept (var > {threshold:g})")
    for a in (a1, a2):
        a.axis("off")
    return fig


# -------------------------------------------------------------------------------- learning curve


def learning_curve_figure(model: str, sizes: Sequence[int], accuracy: Sequence[float],
                          fit_seconds: Sequence[float]) -> Figure:
    """Test accuracy (left axis) and fit seconds (right axis) against training images, log scale."""
    fig = new_figure((6, 4))
    ax = fig.subplots()
    ax.plot(list(sizes), list(accuracy), "o-", color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(list(sizes), list(fit_seconds), "s--", color="tab:orange")
    ax2.set_ylabel("fit seconds", color="tab:orange")
    ax.set_title(f"learning curve: {model}")
    return fig


def compare_figure(runs: Sequence[str], summary: Mapping[str, Sequence[float | None]],
                   per_class_f1: Mapping[str, Sequence[float | None]]) -> Figure:
    """Runs side by side (``digitlab compare --plot``): summary metrics as grouped bars, and F1 per class.

    Parameters
    ----------
    runs : sequence of str
        The runs' labels, in order.
    summary : mapping of metric name to one value per run (None where a run lacks it)
    per_class_f1 : mapping of class label to one F1 per run
    """
    panels = 2 if per_class_f1 else 1
    fig = new_figure((5.5 * panels + 1, 4))
    axes = np.atleast_1d(fig.subplots(1, panels))
    names = list(summary)
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        values = [_number(summary[m][i]) for m in names]
        axes[0].bar(np.arange(len(names)) + i * width, values, width, label=run)
    axes[0].set_xticks(np.arange(len(names)) + width * (len(runs) - 1) / 2, names, rotation=20)
    axes[0].set_title("summary metrics")
    axes[0].legend(fontsize=7)
    if per_class_f1:
        labels = list(per_class_f1)
        for i, run in enumerate(runs):
            axes[1].plot(labels, [_number(per_class_f1[lab][i]) for lab in labels], "o-", label=run)
        axes[1].set_xlabel("class")
        axes[1].set_title("F1 per class")
        axes[1].legend(fontsize=7)
    return fig


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# ------------------------------------------------------------------------------------ the report


def confusion_figure(cm: np.ndarray, labels: Sequence[object], *, log: bool = False) -> Figure:
    """Confusion matrix (rows actual, columns predicted), with counts, or on a log colour scale."""
    from matplotlib.colors import LogNorm

    fig = new_figure((6.5, 5.5))
    ax = fig.subplots()
    data = np.asarray(cm).astype(float)
    norm = LogNorm(vmin=1, vmax=max(data.max(), 2)) if log else None
    im = ax.imshow(np.where(data > 0, data, np.nan) if log else data, cmap="viridis", norm=norm)
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(len(labels)), [str(v) for v in labels])
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("confusion matrix" + (" (log scale)" if log else ""))
    if not log:
        top = data.max() or 1
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="black" if cm[i, j] > top / 2 else "white")
    return fig


def misclassified_figure(ev: Evaluation, limit: int = 40, *, names: Sequence[str] | None = None) -> Figure | None:
    """The first ``limit`` misclassified images with true → predicted label and id; None if none is wrong.

    ``names`` names the classes of ``ev.classes`` in order (a binary model's "not 0" and "0").
    """
    wrong = np.flatnonzero(ev.actual != ev.predicted)[:limit]
    if wrong.size == 0:
        return None
    cols = 10
    rows = int(np.ceil(len(wrong) / cols))
    fig = new_figure((cols * 1.1, rows * 1.3))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(ev.images[i], cmap="gray_r")
        actual, predicted = ev.actual[i], ev.predicted[i]
        if names is not None:
            actual, predicted = (names[int(np.searchsorted(ev.classes, v))] for v in (actual, predicted))
        ax.set_title(f"{actual}→{predicted}\nid {ev.ids[i]}", fontsize=7)
    fig.suptitle("misclassified (true→predicted)", fontsize=9)
    return fig


def probabilities_figure(ev: Evaluation) -> Figure:
    """Histograms of the probability given to the true class, and of the predicted class (correct vs wrong)."""
    k = np.searchsorted(ev.classes, ev.actual)
    p_true = ev.proba[np.arange(len(k)), k]
    p_max = ev.proba.max(axis=1)
    ok = ev.actual == ev.predicted
    fig = new_figure((10, 3.5))
    axes = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 41)
    axes[0].hist(p_true, bins=bins, log=True, color="tab:blue")
    axes[0].set_title("probability given to the true class")
    axes[1].hist([p_max[ok], p_max[~ok]], bins=bins, log=True, label=["correct", "wrong"],
                 color=["tab:green", "tab:red"])
    axes[1].set_title("probability of the predicted class")
    axes[1].legend()
    return fig


def bar_figure(counts: Mapping[str, int], title: str) -> Figure:
    """Plain bar chart of counts per label."""
    fig = new_figure((6, 3))
    ax = fig.subplots()
    ax.bar(list(counts), list(counts.values()), color="tab:gray")
    ax.set_title(title)
    ax.set_xlabel("label")
    return fig


def weights_figure(title: str, names: Sequence[str], images: np.ndarray, *, signed: bool) -> Figure:
    """One 28x28 image per class in a row: signed (red +, blue -) for weights, grey for means.

    Parameters
    ----------
    images : ndarray, shape (k, 28, 28)
    """
    fig = new_figure((1.3 * len(images), 1.6))
    axes = fig.subplots(1, len(images), squeeze=False)
    for ax, name, img in zip(axes[0], names, images, strict=True):
        if signed:
            m = float(np.abs(img).max()) or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            ax.imshow(img, cmap="gray_r")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return fig


# ------------------------------------------------------------------------------ the explanation


def explanation_image(contributions: np.ndarray, image: np.ndarray, *, scale: int = 10) -> np.ndarray:
    """A per-pixel explanation as an RGB picture: green pushes towards the class, red away, over the faint digit.

    Colour opacity is ``(|contribution| / q99) ** 0.75``, clipped to 1, where
    ``q99`` is the 99th percentile of the non-zero ``|contribution|`` (one
    extreme pixel does not wash the rest out); the digit shows as light grey on white.

    Parameters
    ----------
    contributions : array-like, shape (28, 28) or (784,)
    image : array-like, shape (28, 28) or (784,)
        The explained image, pixel intensities 0-255.
    scale : int, default=10
        Output pixels per input pixel.

    Returns
    -------
    ndarray of uint8, shape (28*scale, 28*scale, 3)

    Raises
    ------
    UserError
        The image does not have 784 pixels, or ``scale`` is outside 1..64.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.size != 784:
        raise UserError(f"render needs one 28x28 image (784 pixels), got shape {img.shape}")
    if not 1 <= scale <= 64:
        raise UserError(f"scale must be in 1..64, got {scale!r}")
    img = np.clip(img.reshape(28, 28), 0, 255) / 255.0
    c = np.asarray(contributions, dtype=np.float64).reshape(28, 28)
    mag = np.abs(c)
    peak = float(np.percentile(mag[mag > 0], 99)) if (mag > 0).any() else 0.0
    strength = np.clip(mag / peak, 0, 1) ** 0.75 if peak > 0 else np.zeros_like(c)  # (28, 28) in [0, 1]
    base = 1.0 - 0.3 * img                                                      # faint digit: light grey on white
    rgb = np.repeat(base[..., None], 3, axis=2)                                 # (28, 28, 3)
    colour = np.where((c >= 0)[..., None], np.array([0.0, 0.6, 0.15]), np.array([0.85, 0.05, 0.05]))
    a = strength[..., None]
    rgb = (1 - a) * rgb + a * colour
    out: np.ndarray = np.round(rgb * 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    return out


def render_explanation(explanation: Explanation, image: np.ndarray, path: str | os.PathLike[str], *,
                       scale: int = 10) -> Path:
    """Draw an :class:`~digitlab.explain.Explanation` over its image as a PNG file (see :func:`explanation_image`).

    Returns
    -------
    Path
        ``path``, written atomically with the user's umask.
    """
    return save_png(explanation_image(explanation.contributions, image, scale=scale), path)


# ---------------------------------------------------------------------------------- the mixture


def _scale(img: np.ndarray, weight: float) -> np.ndarray:
    """Shrink a 28 x 28 image by ``weight`` and centre it on a 28 x 28 canvas (the seed's ``scale``)."""
    from PIL import Image

    new = max(round(weight * _W), 1)
    resized = Image.fromarray(img.astype(np.float32)).resize((new, new), Image.Resampling.BILINEAR)
    out = np.zeros((_W, _W), dtype=np.float64)
    o = (_W - new) // 2
    out[o:o + new, o:o + new] = np.asarray(resized)
    return out


def _grid(cells: list[np.ndarray], per_row: int, zoom: int, gap: int) -> np.ndarray:
    """Tile (28, 28, 3) RGB cells into rows on a white background, each cell enlarged ``zoom`` times."""
    rows = max(1, -(-len(cells) // per_row))
    cols = min(per_row, max(len(cells), 1))
    size = _W * zoom
    out = np.full((rows * size + (rows + 1) * gap, cols * size + (cols + 1) * gap, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
        r, c = divmod(i, per_row)
        big = np.repeat(np.repeat(cell, zoom, axis=0), zoom, axis=1)
        y, x = gap + r * (size + gap), gap + c * (size + gap)
        out[y:y + size, x:x + size] = big
    return out


def _ink(prob: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """RGB cell: probability 0 -> background (white), 1 -> black."""
    p = np.clip(np.asarray(prob, dtype=np.float64).reshape(_W, _W), 0.0, 1.0)[..., None]
    bg = np.full((_W, _W, 3), 255.0) if background is None else background
    return np.round(bg * (1.0 - p)).astype(np.uint8)


def clusters_image(means: np.ndarray, sizes: np.ndarray, *, scale_by_size: bool = False, per_row: int = 12,
                   zoom: int = 3, gap: int = 2) -> np.ndarray:
    """Posterior-mean image of every cluster in a grid, in the given order (largest first).

    Parameters
    ----------
    means : ndarray, shape (K, 784), values in [0, 1]
    sizes : ndarray, shape (K,)
    scale_by_size : bool
        Shrink every image in proportion to its cluster's size relative to the largest.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    largest = float(max(int(np.max(sizes)), 1)) if len(sizes) else 1.0
    cells = []
    for m, n in zip(means, sizes, strict=True):
        img = np.asarray(m, dtype=np.float64).reshape(_W, _W)
        if scale_by_size:
            img = _scale(img, float(n) / largest)
        cells.append(_ink(img))
    return _grid(cells, per_row, zoom, gap)


def completions_image(predicted: np.ndarray, truth: np.ndarray, visible: np.ndarray, *, zoom: int = 3,
                      gap: int = 2) -> np.ndarray:
    """Completed digits (top row; hidden half tinted blue) above the true binarised digits (bottom row).

    Parameters
    ----------
    predicted : ndarray, shape (n, 784)
        Probability that each pixel is on.
    truth : ndarray, shape (n, 784)
        The true binary digits.
    visible : ndarray of bool, shape (784,)

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    tint = np.where(np.asarray(visible).reshape(_W, _W)[..., None], 255.0, _HIDDEN_TINT)
    top = [_ink(p, tint) for p in predicted]
    bottom = [_ink(t) for t in truth]
    return _grid(top + bottom, max(len(top), 1), zoom, gap)
