"""Checks shared by the readers: shapes, pixel range, label range."""

from __future__ import annotations

import os

import numpy as np

from digitlab.errors import DataError

IMAGE_SHAPE = (28, 28)
N_PIXELS = 28 * 28


def fmt_value(v: object) -> str:
    """Show a numpy scalar as the plain number a user wrote (``12``, ``2.5``, ``nan``)."""
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def check_labels(labels: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """Return labels as int64, raising DataError at the first one outside 0-9."""
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        i = int(bad[0])
        raise DataError(path, f"label must be 0-9, got {fmt_value(labels[i])}", record=i)
    return labels.astype(np.int64)


def check_pixels(values: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """Return ``(n, 784)`` values as uint8, raising DataError at the first pixel outside 0-255."""
    values = np.asarray(values)
    bad = np.argwhere(~np.isfinite(values) | (values < 0) | (values > 255)) if values.dtype.kind == "f" \
        else np.argwhere((values < 0) | (values > 255))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise DataError(path, f"pixel {col} must be 0-255, got {fmt_value(values[row, col])}", record=row)
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        row, col = (int(v) for v in np.argwhere(values != np.round(values))[0])
        raise DataError(path, f"pixel {col} must be an integer 0-255, got {fmt_value(values[row, col])}", record=row)
    return values.astype(np.uint8)


def check_pair(images: np.ndarray, labels: np.ndarray) -> None:
    """Raise ValueError when images and labels disagree (a programming error)."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (n, 28, 28), got {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
