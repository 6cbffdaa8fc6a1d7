"""Figures that describe a digit dataset (written as PNG files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from digitlab._io import atomic_path

__all__ = ["explore_figures", "variance_mask"]


def variance_mask(images: np.ndarray, threshold: float = 100.0) -> np.ndarray:
    """Pixels whose variance over the dataset exceeds ``threshold``.

    Parameters
    ----------
    images : ndarray, shape (n, 28, 28) or (n, 784)

    Returns
    -------
    ndarray of bool, shape (784,)
    """
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    return flat.var(axis=0) > threshold


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def explore_figures(images: np.ndarray, labels: np.ndarray, out: str | os.PathLike[str],
                    threshold: float = 100.0, seed: int = 0, per_label: int = 10) -> dict[str, Any]:
    """Write the exploration figures into ``out``.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int, shape (n,)
    out : path-like
        Folder, created if needed.
    threshold : float
        Variance threshold for ``kept_pixels.png`` (the scikit-learn seed: 100).

    Returns
    -------
    dict
        ``figures`` (name to path), ``kept_pixels`` (count) and ``counts`` per label.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    digits = sorted(int(d) for d in np.unique(labels))
    figures: dict[str, Path] = {}

    fig, axes = plt.subplots(len(digits), per_label, figsize=(per_label, len(digits)), squeeze=False)
    for r, d in enumerate(digits):
        idx = np.flatnonzero(labels == d)
        pick = rng.choice(idx, size=min(per_label, len(idx)), replace=False)
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(pick):
                ax.imshow(images[pick[c]], cmap="gray_r")
        axes[r][0].set_title(str(d), loc="left", fontsize=8)
    fig.suptitle("Random samples per label")
    figures["samples"] = _save(fig, out / "samples.png")

    fig, axes = plt.subplots(1, len(digits), figsize=(len(digits) * 1.2, 1.6), squeeze=False)
    for ax, d in zip(axes[0], digits, strict=True):
        ax.imshow(images[labels == d].mean(axis=0), cmap="gray_r")
        ax.set_title(str(d))
        ax.axis("off")
    fig.suptitle("Mean image per digit")
    figures["mean_digits"] = _save(fig, out / "mean_digits.png")

    counts = [int((labels == d).sum()) for d in digits]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar([str(d) for d in digits], counts, color="#4477aa")
    for x, n in enumerate(counts):
        ax.text(x, n, str(n), ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("label")
    ax.set_ylabel("images")
    ax.set_title("Class distribution")
    figures["class_distribution"] = _save(fig, out / "class_distribution.png")

    mask = variance_mask(images, threshold)
    flat_var = images.reshape(len(images), -1).astype(np.float64).var(axis=0)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7, 3.4))
    im = a1.imshow(flat_var.reshape(28, 28), cmap="viridis")
    fig.colorbar(im, ax=a1, fraction=0.046)
    a1.set_title("pixel variance")
    a2.imshow(mask.reshape(28, 28), cmap="gray")
    a2.set_title(f"{int(mask.sum())} of 784 kept (var > {threshold:g})")
    for a in (a1, a2):
        a.axis("off")
    figures["kept_pixels"] = _save(fig, out / "kept_pixels.png")

    return {"figures": figures, "kept_pixels": int(mask.sum()), "threshold": threshold,
            "counts": dict(zip(map(str, digits), counts, strict=True))}
