"""Read and write MNIST-style digit datasets in the formats people have them in.

Every reader returns ``(images, labels)``: ``images`` is ``uint8`` of shape
``(n, 28, 28)`` and ``labels`` is ``int64`` of shape ``(n,)`` with values 0-9.
A malformed file raises :class:`digitlab.errors.DataError` naming the file
and the record.
``read_unipen`` reads pen trajectories (strokes, labels and writer ids) instead, ``write_unipen``
writes them.
"""

from __future__ import annotations

from digitlab.data.csv import read_csv, write_csv
from digitlab.data.formats import Format, detect_format, read_dataset
from digitlab.data.idx import read_idx, read_idx_pair, write_idx, write_idx_pair
from digitlab.data.images import read_image_folder, write_image_folder
from digitlab.data.mnist import (
    MNIST_FILES,
    fetch_mnist,
    find_mnist,
    load_mnist,
)
from digitlab.data.npz import read_npz, write_npz
from digitlab.data.parquet import read_parquet, write_parquet
from digitlab.data.unipen import PenDigits, read_unipen, write_unipen

__all__ = [
    "MNIST_FILES",
    "Format",
    "PenDigits",
    "detect_format",
    "fetch_mnist",
    "find_mnist",
    "load_mnist",
    "read_csv",
    "read_dataset",
    "read_idx",
    "read_idx_pair",
    "read_image_folder",
    "read_npz",
    "read_parquet",
    "read_unipen",
    "write_csv",
    "write_idx",
    "write_idx_pair",
    "write_image_folder",
    "write_npz",
    "write_parquet",
    "write_unipen",
]
