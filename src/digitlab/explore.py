"""Describe a digit dataset: which pixels vary, how many images each label has, and the figures of both."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitlab import figures
from digitlab.settings import Settings

__all__ = ["Exploration", "explore_dataset", "explore_figures", "variance_mask"]


def variance_mask(images: np.ndarray, threshold: float = 100.0) -> np.ndarray:
    """Pixels whose variance over the dataset exceeds ``threshold``.

    Parameters
    ----------
    images : ndarray, shape (n, 28, 28) or (n, 784)

    Returns
    -------
    ndarray of bool, shape (784,)
    """
    out: np.ndarray = _pixel_variance(images) > threshold
    return out


def _pixel_variance(images: np.ndarray) -> np.ndarray:
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    out: np.ndarray = flat.var(axis=0)
    return out


@dataclass(frozen=True)
class Exploration:
    """What :func:`explore_figures` wrote and measured.

    Attributes
    ----------
    figures : dict of str to Path
        ``samples``, ``mean_digits``, ``class_distribution`` and ``kept_pixels``.
    kept_pixels : int
        Pixels whose variance exceeds ``threshold``.
    threshold : float
    counts : dict of str to int
        Images per label.
    """

    figures: dict[str, Path] = field(default_factory=dict)
    kept_pixels: int = 0
    threshold: float = 100.0
    counts: dict[str, int] = field(default_factory=dict)


def explore_figures(images: np.ndarray, labels: np.ndarray, out: str | os.PathLike[str],
                    threshold: float = 100.0, seed: int = 0, per_label: int = 10) -> Exploration:
    """Write the exploration figures into ``out`` as PNG files.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int, shape (n,)
    out : path-like
        Folder, created if needed.
    threshold : float
        Variance threshold for ``kept_pixels.png`` (the scikit-learn seed: 100).
    seed : int
        Seed of the random samples per label.
    per_label : int
        Samples shown per label.

    Returns
    -------
    Exploration
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels)
    digits = sorted(int(d) for d in np.unique(labels))
    counts = {str(d): int((labels == d).sum()) for d in digits}
    variance = _pixel_variance(images)
    mask = variance > threshold
    drawn = {
        "samples": figures.samples_figure(images, labels, per_label=per_label, seed=seed),
        "mean_digits": figures.mean_digits_figure(images, labels),
        "class_distribution": figures.class_distribution_figure(counts),
        "kept_pixels": figures.kept_pixels_figure(variance, mask, threshold),
    }
    written = {name: figures.save_figure(fig, folder / f"{name}.png", dpi=100) for name, fig in drawn.items()}
    return Exploration(figures=written, kept_pixels=int(mask.sum()), threshold=threshold, counts=counts)


def explore_dataset(settings: Settings, dataset: str, out: str | os.PathLike[str], threshold: float = 100.0,
                    seed: int = 0) -> Exploration:
    """:func:`explore_figures` of a dataset by name: ``mnist_train``, a store table or a file or folder."""
    from digitlab.data.select import load_dataset

    images, labels, _ = load_dataset(settings, dataset, None)
    return explore_figures(images, labels, out, threshold=threshold, seed=seed)
