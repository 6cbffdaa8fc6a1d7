"""Keras' ``mnist.npz``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Loaded with ``allow_pickle=False``: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._gzip import MAX_DEFLATE_RATIO
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
    _check_headers(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
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
        if labels.dtype.kind not in "iuf":
            example = f" (record 0 is {labels[0].item()!r})" if len(labels) else ""
            raise DataError(f"{path}:{y}", f"labels must be integers 0-9, got an array of {labels.dtype}{example}")
        if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
            row = int(np.flatnonzero(~(np.isfinite(labels) & (labels == np.round(labels))))[0])
            raise DataError(f"{path}:{y}", f"label must be an integer 0-9, got {labels[row]!r}", record=row)
        if images.dtype.kind not in "iuf":
            raise DataError(f"{path}:{x}", f"pixels must be numbers 0-255, got an array of {images.dtype}")
        xs.append(check_pixels(images.reshape(len(images), -1), f"{path}:{x}").reshape(-1, 28, 28))
        ys.append(check_labels(labels, f"{path}:{y}"))
    return np.concatenate(xs), np.concatenate(ys)


def _check_headers(path: Path) -> None:
    """Refuse arrays whose ``.npy`` header claims more data than the archive member holds, before any is read.

    ``np.load`` would allocate what the header claims (an ``(10**9, 28, 28)``
    header is 784 GB) before finding the data missing. A member's declared
    size is itself bounded by what deflate can expand its compressed bytes to.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                if info.compress_type != zipfile.ZIP_STORED and \
                        info.file_size > max(info.compress_size, 1) * MAX_DEFLATE_RATIO:
                    raise DataError(path, f"array {info.filename[:-4]!r} declares {info.file_size} bytes, more than "
                                          f"its {info.compress_size} compressed bytes can hold")
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    header = member.tell()
                claimed = math.prod(shape) * dtype.itemsize
                if claimed > info.file_size - header:
                    raise DataError(path, f"array {info.filename[:-4]!r} claims shape {shape} of {dtype} "
                                          f"({claimed} bytes) but holds {max(info.file_size - header, 0)} bytes")
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(path, f"not a readable .npz file: {exc}") from None


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
