"""MNIST as CSV: one image per row, 784 pixel columns and a label column.

Two layouts are common and both are read:

* label first, no header: the popular ``mnist_train.csv`` conversion;
* label last: MLDB's ``digits_data.csv`` where column ``785`` is the label,
  with or without a header row.
"""

from __future__ import annotations

import csv as _csv
import io
import os
from pathlib import Path
from typing import Literal

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._gzip import read_text
from digitlab.data._validate import N_PIXELS, check_labels, check_pair, check_pixels, fmt_value
from digitlab.errors import DataError

__all__ = ["read_csv", "write_csv"]

LabelPosition = Literal["auto", "first", "last"]


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _sniff_header(first_line: str) -> list[str] | None:
    """Return the header's names if ``first_line`` is a header, else None.

    A header has a non-numeric name, or numbers the columns consecutively
    (``1,2,...,785`` or ``0,...,784``) as MLDB's export does.
    """
    tokens = [t.strip().strip('"') for t in first_line.split(",")]
    if not all(_is_number(t) for t in tokens):
        return tokens
    try:
        values = [int(t) for t in tokens]
    except ValueError:
        return None
    if len(values) > 2 and values == list(range(values[0], values[0] + len(values))) and values[0] in (0, 1):
        return tokens
    return None


def _find_bad_record(path: Path, text: str, skip: int, width: int) -> DataError:
    """Slow path: locate the first ragged or non-numeric row after a fast parse failed."""
    for i, row in enumerate(_csv.reader(io.StringIO(text))):
        if i < skip or not row:
            continue
        record = i - skip
        if len(row) != width:
            return DataError(path, f"ragged row: expected {width} fields, got {len(row)}", record=record)
        for j, token in enumerate(row):
            if not _is_number(token):
                return DataError(path, f"field {j} is not a number: {token[:20]!r}", record=record)
    return DataError(path, "cannot parse CSV")


def _digit_profile(col: np.ndarray) -> tuple[int, int, int]:
    """``(distinct digits, values that are not an integer 0-9, first such row or -1)`` of one column."""
    ok = (col >= 0) & (col <= 9) & (col == np.round(col))
    bad = np.flatnonzero(~ok)
    return len(np.unique(col[ok])), int(bad.size), int(bad[0]) if bad.size else -1


def _label_index(header: list[str] | None, columns: np.ndarray, label: LabelPosition, path: Path) -> int:
    """The label column: as asked, as a header names it, or the one edge column that looks like labels.

    Without a decisive header the first and the last column are candidates. A
    label column holds several different digits, with at most a few values
    outside 0-9 (which are then reported as bad records, never ignored); a
    pixel column at an image's edge is almost always 0 and, where inked, above 9.
    When both or neither look like labels the file is ambiguous: refuse and
    ask for ``label="first"`` or ``"last"`` rather than guess.
    """
    width = int(columns.shape[1])
    if label == "first":
        return 0
    if label == "last":
        return width - 1
    if header is not None:
        names = [h.lower() for h in header]
        for name in ("label", "class", "digit", "y", "785"):
            if name in names:
                return names.index(name)
        if names[-1] in ("784", "785"):
            return width - 1
    n = len(columns)
    edges = {"first": 0, "last": width - 1}
    profiles = {side: _digit_profile(columns[:, i]) for side, i in edges.items()}
    few = max(1, n // 20)
    label_like = [side for side, (digits, bad, _) in profiles.items() if digits >= 2 and bad <= few]
    if len(label_like) == 1:
        return edges[label_like[0]]
    if not label_like:  # one digit at most in each: a single-class file, or no labels at either edge
        clean = [side for side, (digits, bad, _) in profiles.items()
                 if bad == 0 and digits == 1 and columns[0, edges[side]] != 0]
        if len(clean) == 1:
            return edges[clean[0]]

    def describe(side: str) -> str:
        digits, bad, row = profiles[side]
        col = columns[:, edges[side]]
        if bad:
            return f"the {side} column has {bad} value(s) outside 0-9 (record {row}: {fmt_value(col[row])})"
        return f"the {side} column holds {digits} different digit(s)"

    raise DataError(path, "cannot tell which column is the label: " + "; ".join(describe(s) for s in edges)
                    + ". Say where it is: --label first or --label last (read_csv(label=...))")


def read_csv(path: str | os.PathLike[str], label: LabelPosition = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST CSV file, plain or gzip-compressed (``.csv.gz``, as MLDB's ``digits_data.csv.gz``).

    Parameters
    ----------
    path : path-like
        The CSV file (785 columns per row).
    label : {"auto", "first", "last"}
        Where the label column is. ``"auto"`` uses a header naming it
        (``label`` or MLDB's ``785``), else the one edge column holding
        digits; when the data leaves it ambiguous a :class:`DataError` asks
        for ``"first"`` or ``"last"``.

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int64, shape (n,)

    Raises
    ------
    DataError
        A malformed file: the message names the record (a label outside 0-9
        is an error, never read as a pixel), or an ambiguous label column.
    """
    import pyarrow as pa  # here, not at import: `digitlab predict` must not pay for pyarrow
    import pyarrow.csv as pacsv

    path = Path(path)
    text = read_text(path)
    first_line = text.split("\n", 1)[0].strip()
    if not first_line:
        raise DataError(path, "empty CSV file")
    header = _sniff_header(first_line)
    width = len(first_line.split(","))
    if width != N_PIXELS + 1:
        raise DataError(path, f"expected {N_PIXELS + 1} columns (784 pixels and a label), got {width}",
                        record=0)
    skip = 1 if header is not None else 0
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode()),
            read_options=pacsv.ReadOptions(skip_rows=skip, autogenerate_column_names=True),
            convert_options=pacsv.ConvertOptions(column_types={f"f{i}": pa.float64() for i in range(width)}),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _find_bad_record(path, text, skip, width) from None
    if table.num_rows == 0:
        raise DataError(path, "no data rows")
    columns = np.column_stack([c.to_numpy(zero_copy_only=False) for c in table.columns])
    if np.isnan(columns).any():
        row, col = (int(v) for v in np.argwhere(np.isnan(columns))[0])
        raise DataError(path, f"field {col} is empty", record=row)
    li = _label_index(header, columns, label, path)
    labels_raw = columns[:, li]
    if not np.all(labels_raw == np.round(labels_raw)):
        row = int(np.flatnonzero(labels_raw != np.round(labels_raw))[0])
        raise DataError(path, f"label must be an integer 0-9, got {fmt_value(labels_raw[row])}", record=row)
    labels = check_labels(labels_raw, path)
    pixels = check_pixels(np.delete(columns, li, axis=1), path)
    return pixels.reshape(-1, 28, 28), labels


def write_csv(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray,
              label: Literal["first", "last"] = "first", header: bool = False) -> None:
    """Write images and labels as CSV, atomically.

    Parameters
    ----------
    label : {"first", "last"}
        ``"first"`` is the popular conversion; ``"last"`` is MLDB's layout.
    header : bool
        Write a header row: ``label,1x1,...`` for ``"first"``, ``1,...,785`` for ``"last"``.
    """
    images = np.asarray(images, dtype=np.uint8)
    check_pair(images, np.asarray(labels))
    flat = images.reshape(len(images), N_PIXELS).astype(np.int64)
    lab = np.asarray(labels, dtype=np.int64)[:, None]
    table = np.hstack([lab, flat] if label == "first" else [flat, lab])
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        if header:
            names = (["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)]
                     if label == "first" else [str(i) for i in range(1, N_PIXELS + 2)])
            fh.write(",".join(names) + "\n")
        np.savetxt(fh, table, fmt="%d", delimiter=",")
