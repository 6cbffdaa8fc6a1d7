"""Predictions outside the store: picture files, and Kaggle's unlabelled ``test.csv`` to a ``submission.csv``.

``digitlab predict NAME IMAGE...`` and ``digitlab predict NAME --input test.csv
--out submission.csv`` are each one call here::

    from digitlab.models.io import bundled_dir, load_model
    from digitlab.predict import predict_csv

    est = load_model(bundled_dir()).estimator
    predict_csv(est, "test.csv", "submission.csv")   # ImageId,Label with ImageId from 1, as Kaggle wants

Each :class:`Prediction` carries ``not_a_digit``: True when the model says the
picture is not one digit, False when it says it is, None when the model
cannot tell. A model tells by offering ``not_a_digit(X) -> ndarray of bool``
(the detector of issue 14); :func:`not_a_digit` is the one place that asks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlab._io import atomic_path
from digitlab.errors import DataError, NoInkError

__all__ = ["Prediction", "SubmissionResult", "not_a_digit", "predict_csv", "predict_files", "predict_pixels",
           "read_pixels_csv", "write_submission"]

#: Rows predicted at once (bounds the memory of a large CSV).
BATCH = 4096


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one picture.

    Attributes
    ----------
    digit : int or None
        The most probable class; None when the picture has no ink.
    probability : float or None
        Its probability.
    probabilities : dict of str to float, or None
        Every class's probability.
    not_a_digit : bool or None
        Whether the model says the picture is not one digit (None: the model cannot tell).
    note : str or None
        ``"no ink"`` for an empty picture.
    """

    digit: int | None
    probability: float | None
    probabilities: dict[str, float] | None
    not_a_digit: bool | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The prediction as a JSON-able dict."""
        return {"digit": self.digit, "probability": self.probability, "probabilities": self.probabilities,
                "not_a_digit": self.not_a_digit, "note": self.note}


def not_a_digit(est: Any, X: np.ndarray) -> np.ndarray | None:
    """Whether each row of ``X`` is not one digit, by the model's own detector; None when it has none.

    Parameters
    ----------
    est : fitted model
    X : ndarray of shape (n, 784)

    Returns
    -------
    ndarray of bool, shape (n,), or None
    """
    detect = getattr(est, "not_a_digit", None)
    if not callable(detect):
        return None
    return np.asarray(detect(X), dtype=bool).reshape(len(X))


def predict_pixels(est: Any, X: np.ndarray) -> list[Prediction]:
    """Predict rows of pixels.

    Parameters
    ----------
    est : fitted model
    X : ndarray of shape (n, 784) or (n, 28, 28), 0-255
    """
    flat = np.asarray(X).reshape(len(X), -1)
    classes = np.asarray(est.classes_)
    out: list[Prediction] = []
    for start in range(0, len(flat), BATCH):
        part = flat[start:start + BATCH]
        proba = np.asarray(est.predict_proba(part))
        flags = not_a_digit(est, part)
        for i, row in enumerate(proba):
            k = int(np.argmax(row))
            out.append(Prediction(digit=classes[k].item(), probability=float(row[k]),
                                  probabilities={str(c): float(p) for c, p in zip(classes, row, strict=True)},
                                  not_a_digit=None if flags is None else bool(flags[i])))
    return out


def predict_files(est: Any, paths: Sequence[str | os.PathLike[str]]) -> list[Prediction]:
    """Predict picture files, each normalised like MNIST (:func:`digitlab.preprocess.load_image`).

    A picture without ink gets ``note="no ink"`` and no digit instead of a guess.

    Raises
    ------
    UserError
        A file cannot be read or decoded.
    """
    import digitlab.preprocess as pre

    out: list[Prediction] = []
    for path in paths:
        try:
            img = pre.load_image(path)
        except NoInkError:
            out.append(Prediction(digit=None, probability=None, probabilities=None, note="no ink"))
            continue
        out.extend(predict_pixels(est, img.reshape(1, -1)))
    return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_pixels_csv(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an unlabelled CSV of 784 pixel columns (Kaggle's ``test.csv``), with or without a header row.

    ``.gz`` files are read too.

    Returns
    -------
    ndarray of uint8, shape (n, 784)

    Raises
    ------
    DataError
        Not 784 columns (a labelled file has 785: evaluate it with
        ``digitlab evaluate NAME --dataset FILE``), or values that are not
        integers 0-255.
    """
    import gzip

    import pyarrow as pa
    import pyarrow.csv as pacsv

    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            first = f.readline().strip()
    except FileNotFoundError:
        raise DataError(p, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(p, f"cannot read it as CSV text ({exc})") from None
    tokens = [t.strip().strip('"') for t in first.split(",")] if first else []
    if len(tokens) != 784:
        hint = (" (a labelled dataset: measure a model on it with 'digitlab evaluate NAME --dataset FILE')"
                if len(tokens) == 785 else "")
        raise DataError(p, f"expected 784 pixel columns, got {len(tokens)}{hint}")
    header = not all(_is_number(t) for t in tokens)
    read = pacsv.ReadOptions(autogenerate_column_names=not header, block_size=1 << 24)
    try:
        table = pacsv.read_csv(str(p), read_options=read)
    except pa.ArrowInvalid as exc:
        raise DataError(p, f"malformed CSV ({str(exc).splitlines()[0]})") from None
    try:
        values = np.column_stack([table.column(i).to_numpy(zero_copy_only=False) for i in range(784)]) \
            if table.num_rows else np.zeros((0, 784))
    except (TypeError, ValueError):
        values = None
    if values is None or not np.issubdtype(values.dtype, np.number):
        raise DataError(p, "every pixel must be an integer 0-255; found text")
    bad = ~np.isfinite(values) | (values < 0) | (values > 255) | (values != np.round(values))
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(p, f"pixel {col} must be an integer 0-255, got {values[row, col]!r}",
                        record=row + 1 + int(header))
    return values.astype(np.uint8)


def write_submission(path: str | os.PathLike[str], labels: Sequence[int] | np.ndarray) -> Path:
    """Write Kaggle's ``submission.csv``: ``ImageId,Label`` with ImageId counting from 1, atomically."""
    target = Path(path)
    lines = ["ImageId,Label", *(f"{i},{int(v)}" for i, v in enumerate(labels, start=1))]
    with atomic_path(target) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@dataclass(frozen=True)
class SubmissionResult:
    """What :func:`predict_csv` read and wrote.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        The predicted digit of each row, in the file's order.
    out : Path or None
        The submission file written.
    counts : dict of str to int
        Rows predicted per digit.
    not_a_digit : int or None
        Rows the model says are not a digit (None: it cannot tell).
    """

    labels: np.ndarray
    out: Path | None
    counts: dict[str, int]
    not_a_digit: int | None = None


def predict_csv(est: Any, path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                ) -> SubmissionResult:
    """Predict every row of an unlabelled pixel CSV (:func:`read_pixels_csv`) and, if asked, write the submission.

    Raises
    ------
    DataError
        The CSV is not 784 pixel columns of integers 0-255.
    """
    preds = predict_pixels(est, read_pixels_csv(path))
    labels = np.array([p.digit for p in preds], dtype=np.int64)
    values, counts = np.unique(labels, return_counts=True)
    flags = [p.not_a_digit for p in preds]
    written = write_submission(out, labels) if out is not None else None
    return SubmissionResult(labels=labels, out=written,
                            counts={str(v): int(c) for v, c in zip(values, counts, strict=True)},
                            not_a_digit=None if not flags or flags[0] is None else sum(bool(f) for f in flags))
