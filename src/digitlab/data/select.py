"""Choose rows of a dataset: by name (MNIST split, store table or file), by SQL condition, by stratified sample.

This is what ``digitlab train --where/--table/--train-size`` and ``digitlab evaluate --dataset`` use, as MLDB's
``classifier.experiment`` selects its training and testing rows with ``trainingWhere``/``testingWhere``;
:func:`import_dataset` is ``digitlab data import``: a file or MNIST into the store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab.data.csv import LabelPosition
from digitlab.data.formats import Format
from digitlab.errors import DigitlabError, NotFoundError, UserError
from digitlab.settings import Settings

if TYPE_CHECKING:
    from digitlab.models.base import ProgressFn

__all__ = ["MNIST", "filter_where", "import_dataset", "load_dataset", "load_groups", "stratified_sample"]

#: The source name of ``import_dataset`` that imports both MNIST splits (``mnist_train``, ``mnist_test``).
MNIST = "mnist"


def filter_where(images: np.ndarray, labels: np.ndarray, ids: np.ndarray,
                 where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the rows of in-memory arrays that satisfy an SQL condition over ``id``, ``label`` and ``pixels``.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, 28, 28)
    labels, ids : ndarray, shape (n,)
    where : str
        A DuckDB condition, e.g. ``"hash(id) % 5 != 0"``.

    Returns
    -------
    images, labels, ids
        The selected rows, in their original order.
    """
    import duckdb
    import pyarrow as pa

    from digitlab.store import SEALED_CONFIG, check_where, first_line

    check_where(where)
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    tbl = pa.table({"_row": pa.array(np.arange(len(labels), dtype=np.int64)),
                    "id": pa.array(np.asarray(ids, dtype=np.int64)),
                    "label": pa.array(np.asarray(labels, dtype=np.uint8)),
                    "pixels": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])})
    con = duckdb.connect(config=SEALED_CONFIG)
    try:
        con.register("t", tbl)
        rows = con.execute(f"SELECT _row FROM t WHERE ({where}) ORDER BY _row").fetchnumpy()["_row"]
    except duckdb.Error as exc:
        raise UserError(f"bad --where condition {where!r}: {first_line(exc)}") from None
    finally:
        con.close()
    rows = np.asarray(rows, dtype=np.int64)
    return images[rows], labels[rows], ids[rows]


def load_dataset(settings: Settings, dataset: str, where: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, labels and ids of ``dataset``: ``mnist_train``/``mnist_test``, a store table, or a file/folder.

    ``mnist_train`` and ``mnist_test`` come from the store when imported there,
    else straight from the MNIST files; ``where`` is an SQL condition over
    ``id``, ``label`` and ``pixels`` in every case.
    """
    from digitlab.data import load_mnist, read_dataset
    from digitlab.store import Store

    store = Store(settings.store_path)
    in_store = store.tables() if store.path.exists() else []
    if dataset in in_store:
        images, labels, ids = store.load(dataset, where)
    elif dataset in ("mnist_train", "mnist_test"):
        images, labels = load_mnist(settings.data_dir, dataset.split("_")[1])
        ids = np.arange(len(labels), dtype=np.int64)
        if where:
            images, labels, ids = filter_where(images, labels, ids, where)
    elif Path(dataset).exists():
        images, labels = read_dataset(dataset)
        ids = np.arange(len(labels), dtype=np.int64)
        if where:
            images, labels, ids = filter_where(images, labels, ids, where)
    else:
        raise NotFoundError(f"no dataset {dataset!r}: not mnist_train/mnist_test, a table in the store "
                            f"({', '.join(in_store) or 'none'}) or an existing file or folder")
    if len(labels) == 0:
        raise UserError(f"the selection of {dataset!r}" + (f" with --where {where!r}" if where else "") + " is empty")
    return images, labels, ids


def load_groups(settings: Settings, dataset: str, where: str | None, column: str, ids: np.ndarray,
                labels: np.ndarray) -> list[object]:
    """The value of ``column`` for each row :func:`load_dataset` gave (``ids``, ``labels``), in that order.

    ``label`` and ``id`` are the rows' own; any other column is read from the
    store table ``dataset`` (a ``unipen`` import's ``writer``, say). MNIST
    files and other files have only ``id``, ``label`` and ``pixels``.

    Raises
    ------
    UserError
        No such column (the message lists the dataset's columns), or a column
        of lists (``pixels``).
    """
    from digitlab.store import Store

    if column == "label":
        return [int(v) for v in labels]
    if column == "id":
        return [int(v) for v in ids]
    store = Store(settings.store_path)
    in_store = store.tables() if store.path.exists() else []
    if dataset not in in_store:
        if column == "pixels":
            raise UserError("cannot group rows by 'pixels': its values are arrays; group by a column of numbers or "
                            "text")
        raise UserError(f"the dataset {dataset!r} has no column {column!r}; its columns: id, label, pixels "
                        "(store tables can have more, e.g. a unipen import's writer)")
    got_ids, values = store.load_column(dataset, column, where)
    if not np.array_equal(got_ids, ids):
        raise DigitlabError(f"the table {dataset!r} changed while it was read (its ids differ between two reads); "
                            "try again")
    if any(isinstance(v, (list, tuple, dict)) for v in values[:1]):
        raise UserError(f"cannot group rows by {column!r}: its values are arrays or structures; group by a "
                        "column of numbers or text")
    return values


def import_dataset(settings: Settings, source: str | os.PathLike[str], name: str | None = None,
                   fmt: Format | None = None, split: str = "train", *, replace: bool = False,
                   label: LabelPosition = "auto", progress: ProgressFn | None = None) -> dict[str, int]:
    """Import a dataset into the store, in one short write transaction.

    The file is read and checked before the store is opened, so a malformed
    file never touches it and the store is held only while DuckDB copies the rows.

    A UNIPEN file of pen trajectories (``--format unipen``, or a ``.tra``/``.tes``
    name, ``.gz`` too) is drawn digit by digit as the page draws strokes
    (:func:`digitlab.pen.render`), and its table has two more columns:
    ``writer INTEGER`` (the file's writer id) and ``strokes VARCHAR``, the
    digit's strokes on the 280x280 canvas as JSON ``[[[x, y], ...], ...]``.

    Parameters
    ----------
    source : str or path-like
        ``"mnist"`` (when no such file exists) for both MNIST splits as
        ``mnist_train`` and ``mnist_test``; else a file or folder
        (:func:`~digitlab.data.read_dataset`).
    name : str, optional
        The table of a file or folder (required for one).
    fmt : Format, optional
        The file's format (default: guessed from the path).
    split : {"train", "test"}
        For ``.npz`` files and IDX folders.
    replace : bool, default=False
        Replace tables that exist; without it an existing table is an error
        and the store is left as it was.
    label : {"auto", "first", "last"}
        For CSV files: where the label column is.
    progress : callable, optional
        ``progress("render", done, total)`` while a UNIPEN file's digits are drawn.

    Returns
    -------
    dict of str to int
        Rows imported per table.

    Raises
    ------
    UserError
        No or a bad table name for a file; a table that exists without
        ``replace``; a malformed file (:class:`~digitlab.errors.DataError`).
    """
    import pyarrow as pa

    from digitlab.data import load_mnist, read_dataset
    from digitlab.data.formats import detect_format, read_pen_images
    from digitlab.store import Store, check_name

    store = Store(settings.store_path)
    if os.fspath(source) == MNIST and not Path(source).exists():
        splits = {f"mnist_{s}": (*load_mnist(settings.data_dir, s), None) for s in ("train", "test")}
        return store.import_many(splits, replace=replace)
    if name is None:
        raise UserError("a table name is required when importing a file or folder (--name)")
    check_name(name)
    path = Path(source)
    if path.is_file() and (Format(fmt) if fmt is not None else detect_format(path)) is Format.unipen:
        if label != "auto":
            raise UserError(f"--label is for CSV files; {path} is read as unipen")
        images, labels, digits, canvas = read_pen_images(path, progress)
        strokes = [json.dumps([q.tolist() for q in c], separators=(",", ":")) for c in canvas]
        extra = {name: {"writer": digits.writers.astype(np.int32), "strokes": pa.array(strokes, pa.string())}}
        return store.import_many({name: (images, labels, None)}, replace=replace, extra=extra)
    images, labels = read_dataset(source, fmt, split=split, label=label)
    return store.import_many({name: (images, labels, None)}, replace=replace)


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row positions of a stratified random sample of ``size`` rows (all rows if ``size >= n``)."""
    n = len(labels)
    if size <= 0:
        raise UserError(f"the sample size must be positive, got {size}")
    if size >= n:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    n_classes = len(np.unique(labels))
    if size < n_classes:
        raise UserError(f"a stratified sample of {size} is smaller than the number of labels ({n_classes})")
    idx, _ = train_test_split(np.arange(n), train_size=size, stratify=labels, random_state=seed)
    return np.sort(idx)
