"""Keras' ``mnist.npz``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Loaded with ``allow_pickle=False``: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._validate import check_labels, check_pair, check_pixels
from digitlab.errors import DataError

__all__ = ["read_npz", "write_npz"]

Split = Literal["train", "test", "all"]


def read_npz(path: str | os.PathLike[str], split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read a Keras-style ``mnist.npz``.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file. Besides Keras' four arrays, a file with just ``x`` and
        ``y`` (or ``images`` and ``labels``) is accepted.
    split : {"train", "test", "all"}
        Which arrays to return; ``"all"`` concatenates train then test.

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int64, shape (n,)
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(path, f"not a readable .npz file: {exc}") from None
    pairs = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
    if all(k in arrays for k in pairs["train"]):
        keys = [pairs["train"], pairs["test"]] if split == "all" else [pairs[split]]
    else:
        keys = [(x, y) for x, y in (("x", "y"), ("images", "labels")) if x in arrays and y in arrays][:1]
    if not keys or any(x not in arrays or y not in arrays for x, y in keys):
        raise DataError(path, f"expected arrays x_{split}/y_{split} (or x/y), found {sorted(arrays)}")
    xs, ys = [], []
    for x, y in keys:
        images, labels = arrays[x], arrays[y]
        if images.ndim == 2 and images.shape[1] == 784:
            images = images.reshape(-1, 28, 28)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(path, f"array {x!r} must have shape (n, 28, 28), got {images.shape}")
        if labels.shape != (len(images),):
            raise DataError(path, f"array {y!r} must have shape ({len(images)},), got {labels.shape}")
        xs.append(check_pixels(images.reshape(len(images), -1), f"{path}:{x}").reshape(-1, 28, 28))
        ys.append(check_labels(labels, f"{path}:{y}"))
    return np.concatenate(xs), np.concatenate(ys)


def write_npz(path: str | os.PathLike[str], train: tuple[np.ndarray, np.ndarray],
              test: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Write Keras-style ``x_train``/``y_train`` (and ``x_test``/``y_test``) atomically."""
    check_pair(*train)
    x_train, y_train = np.asarray(train[0], np.uint8), np.asarray(train[1], np.uint8)
    if test is not None:
        check_pair(*test)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        if test is None:
            np.savez_compressed(fh, x_train=x_train, y_train=y_train)
        else:
            np.savez_compressed(fh, x_train=x_train, y_train=y_train, x_test=np.asarray(test[0], np.uint8),
                                y_test=np.asarray(test[1], np.uint8))
