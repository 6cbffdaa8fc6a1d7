"""The IDX format of the original MNIST files, raw or gzip-compressed.

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM``
big-endian uint32 dimension sizes, then the data. MNIST uses type ``0x08``
(unsigned byte): images are 3-dimensional ``(n, 28, 28)``, labels 1-dimensional.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._validate import check_labels, check_pair
from digitlab.errors import DataError

__all__ = ["read_idx", "read_idx_pair", "write_idx", "write_idx_pair"]

_UBYTE = 0x08


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(path, f"corrupt gzip data: {exc}") from None
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file of unsigned bytes (``.gz`` or raw).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    array : ndarray of uint8
        Shape given by the file's header, e.g. ``(n, 28, 28)`` or ``(n,)``.

    Raises
    ------
    DataError
        Bad magic number, unsupported type, or data shorter than the header says.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(path, f"bad IDX magic number {raw[:4].hex() or '(empty file)'}; expected 0000 08 0N")
    dtype, ndim = raw[2], raw[3]
    if dtype != _UBYTE or not 1 <= ndim <= 4:
        raise DataError(path, f"bad IDX magic number {raw[:4].hex()}; only unsigned-byte (0x08) data "
                              "with 1 to 4 dimensions is supported")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(path, "truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header < count:
        per = int(np.prod(shape[1:])) if ndim > 1 else 1
        have = (len(raw) - header) // per
        raise DataError(path, f"truncated IDX data: header says {shape[0]} records of {per} bytes, "
                              f"file holds {len(raw) - header} bytes", record=have)
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=header).reshape(shape).copy()


def read_idx_pair(images_path: str | os.PathLike[str],
                  labels_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file.

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int64, shape (n,)
    """
    images = read_idx(images_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(images_path, f"expected images of shape (n, 28, 28), got {images.shape}")
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(labels_path, f"expected a 1-dimensional labels file, got shape {labels.shape}")
    if len(labels) != len(images):
        raise DataError(labels_path, f"{len(labels)} labels for {len(images)} images in {images_path}")
    return images, check_labels(labels, labels_path)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array as IDX, gzip-compressed when ``path`` ends in ``.gz``, atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str],
                   images: np.ndarray, labels: np.ndarray) -> None:
    """Write images ``(n, 28, 28)`` and labels ``(n,)`` as two IDX files."""
    check_pair(images, labels)
    write_idx(images_path, images)
    write_idx(labels_path, np.asarray(labels, dtype=np.uint8))
