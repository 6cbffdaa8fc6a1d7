"""The IDX format of the original MNIST files, raw or gzip-compressed.

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM``
big-endian uint32 dimension sizes, then the data. MNIST uses type ``0x08``
(unsigned byte): images are 3-dimensional ``(n, 28, 28)``, labels 1-dimensional.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._gzip import GZIP_ERRORS, MAX_DEFLATE_RATIO, open_data
from digitlab.data._validate import check_labels, check_pair
from digitlab.errors import DataError

__all__ = ["read_idx", "read_idx_pair", "write_idx", "write_idx_pair"]

_UBYTE = 0x08


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file of unsigned bytes (``.gz`` or raw).

    Only the bytes the header declares are read (a gzip file is never
    decompressed further), and a file holding more than that is refused.

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
        Bad magic number, unsupported type, sizes the file cannot hold, data
        shorter or longer than the header says, corrupt gzip data.
    """
    path = Path(path)
    with open_data(path) as (stream, size, compressed):
        try:
            magic = stream.read(4)
        except GZIP_ERRORS as exc:
            raise DataError(path, f"corrupt gzip data: {exc}") from None
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
            raise DataError(path, f"bad IDX magic number {magic.hex() or '(empty file)'}; expected 0000 08 0N")
        dtype, ndim = magic[2], magic[3]
        if dtype != _UBYTE or not 1 <= ndim <= 4:
            raise DataError(path, f"bad IDX magic number {magic.hex()}; only unsigned-byte (0x08) data "
                                  "with 1 to 4 dimensions is supported")
        try:
            dims = stream.read(4 * ndim)
        except GZIP_ERRORS as exc:
            raise DataError(path, f"corrupt gzip data: {exc}") from None
        if len(dims) < 4 * ndim:
            raise DataError(path, "truncated IDX header")
        shape = struct.unpack(f">{ndim}I", dims)
        count = math.prod(shape)  # a Python int: four uint32 sizes can overflow int64
        header = 4 + 4 * ndim
        if not compressed and count > size - header:
            raise DataError(path, f"truncated IDX data: header says {shape[0]} records of {_per(shape)} bytes, "
                                  f"file holds {size - header} bytes", record=(size - header) // _per(shape))
        if compressed and count > size * MAX_DEFLATE_RATIO:
            raise DataError(path, f"the IDX header declares shape {shape} ({count} bytes), more than a gzip file "
                                  f"of {size} bytes can hold")
        try:
            data = stream.read(count)
            extra = stream.read(1)
        except GZIP_ERRORS as exc:
            raise DataError(path, f"corrupt gzip data: {exc}") from None
        if len(data) < count:
            raise DataError(path, f"truncated IDX data: header says {shape[0]} records of {_per(shape)} bytes, "
                                  f"file holds {len(data)} bytes", record=len(data) // _per(shape))
        if extra:
            raise DataError(path, f"the file holds more data than its IDX header declares ({count} bytes for "
                                  f"shape {shape}); it is corrupt or a decompression bomb")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()


def _per(shape: tuple[int, ...]) -> int:
    """Bytes of one record (at least 1)."""
    return max(math.prod(shape[1:]), 1) if len(shape) > 1 else 1


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
