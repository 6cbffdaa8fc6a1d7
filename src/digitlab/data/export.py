"""Write a dataset out of the store as an image folder: one sub-folder per label, one PNG per row.

``digitlab data export drawings --out DIR`` is :func:`export_dataset`: the
corrections users made in MLPaint (the store's table ``drawings``), or any
other dataset, become a folder that any tool reads (and that ``digitlab data
import DIR --format images`` reads back).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab._io import atomic_path
from digitlab.errors import UserError
from digitlab.settings import Settings

__all__ = ["ExportResult", "export_dataset"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_dataset` wrote.

    Attributes
    ----------
    folder : Path
    n : int
        Images written.
    per_label : dict of str to int
        Images per label sub-folder.
    """

    folder: Path
    n: int
    per_label: dict[str, int]


def export_dataset(settings: Settings, dataset: str, out: str | os.PathLike[str], *,
                   where: str | None = None) -> ExportResult:
    """Write ``dataset`` (a store table, ``mnist_train``/``mnist_test``, or a file) as ``out/<label>/<id>.png``.

    Each image is written atomically and named by its row id (zero-padded,
    so the files sort by id); files already in ``out`` are left alone, and an
    image of the same id is replaced.

    Parameters
    ----------
    settings : Settings
    dataset : str
    out : path-like
        The folder; created if missing.
    where : str, optional
        SQL condition selecting the rows, over the table's columns (``label = 7``; for
        ``drawings`` also ``profile = 'alice'``).

    Raises
    ------
    NotFoundError
        No such dataset.
    UserError
        ``out`` exists and is not a folder, or the selection is empty.
    """
    from PIL import Image

    from digitlab.data.select import load_dataset

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} exists and is not a folder")
    images, labels, ids = load_dataset(settings, dataset, where)
    width = max(5, len(str(int(ids.max()))))
    for img, label, id_ in zip(np.asarray(images, dtype=np.uint8), labels, ids, strict=True):
        with atomic_path(folder / str(int(label)) / f"{int(id_):0{width}d}.png") as tmp:
            Image.fromarray(img.reshape(28, 28), mode="L").save(tmp, format="PNG")
    values, counts = np.unique(labels, return_counts=True)
    return ExportResult(folder=folder, n=len(labels),
                        per_label={str(int(v)): int(c) for v, c in zip(values, counts, strict=True)})
