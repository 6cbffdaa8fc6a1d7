"""Choose rows of a dataset: by name (MNIST split, store table or file), by SQL condition, by stratified sample.

This is what ``digitlab train --where/--table/--train-size`` and ``digitlab evaluate --dataset`` use, as MLDB's
``classifier.experiment`` selects its training and testing rows with ``trainingWhere``/``testingWhere``;
:func:`import_dataset` is ``digitlab data import``: a file or MNIST into the store.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitlab.data.csv import LabelPosition
from digitlab.data.formats import Format
from digitlab.errors import NotFoundError, UserError
from digitlab.settings import Settings

__all__ = ["MNIST", "filter_where", "import_dataset", "load_dataset", "stratified_sample"]

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


def import_dataset(settings: Settings, source: str | os.PathLike[str], name: str | None = None,
                   fmt: Format | None = None, split: str = "train", *, replace: bool = False,
                   label: LabelPosition = "auto") -> dict[str, int]:
    """Import a dataset into the store, in one short write transaction.

    The file is read and checked before the store is opened, so a malformed
    file never touches it and the store is held only while DuckDB copies the rows.

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
    from digitlab.data import load_mnist, read_dataset
    from digitlab.store import Store, check_name

    store = Store(settings.store_path)
    if os.fspath(source) == MNIST and not Path(source).exists():
        splits = {f"mnist_{s}": (*load_mnist(settings.data_dir, s), None) for s in ("train", "test")}
        return store.import_many(splits, replace=replace)
    if name is None:
        raise UserError("a table name is required when importing a file or folder (--name)")
    check_name(name)
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
