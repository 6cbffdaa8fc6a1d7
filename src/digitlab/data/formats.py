"""Pick a reader by format name or by looking at the path."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab.data.csv import LabelPosition
from digitlab.errors import DataError, UserError

if TYPE_CHECKING:
    from digitlab.data.unipen import PenDigits
    from digitlab.models.base import ProgressFn

__all__ = ["Format", "detect_format", "read_dataset", "read_pen_images"]


class Format(str, enum.Enum):
    """Dataset formats digitlab reads."""

    idx = "idx"
    csv = "csv"
    npz = "npz"
    images = "images"
    parquet = "parquet"
    unipen = "unipen"


def detect_format(path: str | os.PathLike[str]) -> Format:
    """Guess the format of ``path`` from its suffix, or from a folder's content."""
    from digitlab.data.mnist import mnist_folders

    p = Path(path)
    if p.is_dir():
        for folder in mnist_folders(p):
            if folder.is_dir() and any(f.name.startswith(("train-images", "t10k-images")) for f in folder.iterdir()):
                return Format.idx
        return Format.images
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return Format.csv
    if name.endswith(".npz"):
        return Format.npz
    if name.endswith((".parquet", ".pq")):
        return Format.parquet
    if name.endswith((".tra", ".tes")):
        return Format.unipen
    if "idx" in name or name.endswith("ubyte"):
        return Format.idx
    raise DataError(p, "cannot tell the format from the name; pass --format idx|csv|npz|images|parquet|unipen")


def _idx_labels_for(images_path: Path) -> Path:
    name = images_path.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images", "labels")):
        if a in name:
            return images_path.with_name(name.replace(a, b))
    raise DataError(images_path, "cannot find the matching labels file (expected '...labels-idx1...')")


def read_pen_images(path: str | os.PathLike[str], progress: ProgressFn | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, PenDigits, list[list[np.ndarray]]]:
    """Read a UNIPEN file and draw every digit as the page draws strokes.

    Parameters
    ----------
    path : path-like
        A UNIPEN file (:func:`~digitlab.data.read_unipen`).
    progress : callable, optional
        ``progress("render", done, total)`` as the digits are drawn.

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
        :func:`digitlab.pen.render` of each digit (the default placement: the
        280 px canvas, 70 % high, centred, the page's 20 px pen).
    labels : ndarray of int64, shape (n,)
    digits : PenDigits
        What the file holds (strokes in tablet coordinates, labels, writers).
    canvas : list of n lists of ndarray of shape (n_points, 2)
        Each digit's strokes on the canvas (y down), as the page sends them.

    Raises
    ------
    DataError
        A malformed file (naming the line), or a digit that draws to nothing.
    """
    from digitlab.data.unipen import read_unipen
    from digitlab.errors import NoInkError
    from digitlab.pen import render_page

    p = Path(path)
    digits = read_unipen(p)
    try:
        images, canvas = render_page(digits.strokes, progress=progress)
    except NoInkError as exc:
        raise DataError(p, str(exc)) from None
    return images, digits.labels, digits, canvas


def read_dataset(path: str | os.PathLike[str], fmt: Format | None = None, split: str = "train",
                 label: LabelPosition = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Read any supported dataset.

    Parameters
    ----------
    path : path-like
        A CSV or ``.npz`` file, an IDX images file (its labels file is found
        beside it), a folder holding MNIST's IDX files, a folder of images
        with one sub-folder per label, or a UNIPEN file of pen trajectories
        (``.tra``, ``.tes``, ``.gz`` too; each digit drawn as the page draws
        strokes, :func:`digitlab.pen.render_page`).
    fmt : Format, optional
        Force a format instead of guessing it.
    split : {"train", "test"}
        For a ``.npz`` or a folder of MNIST IDX files: which split to read.
    label : {"auto", "first", "last"}
        For a CSV file: where the label column is (:func:`~digitlab.data.read_csv`).

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int64, shape (n,)
    """
    from digitlab.data.csv import read_csv
    from digitlab.data.idx import read_idx_pair
    from digitlab.data.images import read_image_folder
    from digitlab.data.mnist import load_mnist
    from digitlab.data.npz import read_npz
    from digitlab.data.parquet import read_parquet

    p = Path(path)
    if not p.exists():
        raise DataError(p, "no such file or folder")
    fmt = Format(fmt) if fmt is not None else detect_format(p)
    if fmt is Format.parquet and p.is_dir():
        raise DataError(p, "a folder is not a Parquet file; name the .parquet file")
    if label != "auto" and fmt is not Format.csv:
        raise UserError(f"--label is for CSV files; {p} is read as {fmt.value}")
    if fmt is Format.csv:
        return read_csv(p, label=label)
    if fmt is Format.parquet:
        return read_parquet(p)
    if fmt is Format.npz:
        return read_npz(p, split="test" if split == "test" else "train")
    if fmt is Format.images:
        return read_image_folder(p)
    if fmt is Format.unipen:
        return read_pen_images(p)[:2]
    if p.is_dir():
        return load_mnist(p, split=split)
    return read_idx_pair(p, _idx_labels_for(p))
