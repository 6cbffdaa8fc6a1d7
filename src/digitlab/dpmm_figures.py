"""Figures of a fitted Dirichlet-process mixture: its clusters and its completions of half-seen digits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitlab._io import atomic_path

__all__ = ["clusters_image", "completions_image", "save_png"]

_W = 28
_HIDDEN_TINT = np.array([222, 235, 255], dtype=np.float64)  # background of the predicted (hidden) pixels


def _scale(img: np.ndarray, weight: float) -> np.ndarray:
    """Shrink a 28 x 28 image by ``weight`` and centre it on a 28 x 28 canvas (the seed's ``scale``)."""
    from PIL import Image

    new = max(int(round(weight * _W)), 1)
    small = np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((new, new), Image.BILINEAR))
    out = np.zeros((_W, _W), dtype=np.float64)
    o = (_W - new) // 2
    out[o:o + new, o:o + new] = small
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
    for m, n in zip(means, sizes):
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
    predicted : ndarray, shape (n, 784) -- probability that each pixel is on
    truth : ndarray, shape (n, 784) -- the true binary digits
    visible : ndarray of bool, shape (784,)

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    tint = np.where(np.asarray(visible).reshape(_W, _W)[..., None], 255.0, _HIDDEN_TINT)
    top = [_ink(p, tint) for p in predicted]
    bottom = [_ink(t) for t in truth]
    return _grid(top + bottom, max(len(top), 1), zoom, gap)


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an RGB uint8 image as a PNG, atomically."""
    from PIL import Image

    target = Path(path)
    with atomic_path(target) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return target
