"""Metrics of a fitted classifier on labelled images.

:func:`evaluate` predicts a dataset and returns :class:`Evaluation` (metrics
plus per-image predictions). :data:`SUMMARY_KEYS` and :data:`PER_CLASS_KEYS`
are the metrics every table shows (``digitlab train``, ``evaluate``,
``compare`` and the HTML report of :mod:`digitlab.report`), in that order.

:func:`accuracy_by` splits the accuracy by any per-row value (a writer, a
label), worst group first: ``digitlab evaluate --by writer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from digitlab.errors import UserError

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier, ProgressFn

__all__ = ["ECE_BINS", "PER_CLASS_KEYS", "SUMMARY_KEYS", "Evaluation", "GroupAccuracy", "accuracy_by",
           "binary_metrics", "evaluate", "expected_calibration_error", "is_binary", "multiclass_metrics",
           "select_known", "summary"]

_CHUNK = 2000

#: The overall metrics shown in summaries, in order; each is present for multiclass or binary models or both.
SUMMARY_KEYS: tuple[str, ...] = ("accuracy", "f1_weighted", "precision", "recall", "f1", "mean_proba_true",
                                 "mean_proba_rest", "ece", "n")
#: Equal-width confidence bins of :func:`expected_calibration_error`.
ECE_BINS = 10
#: The metrics of every class in ``metrics["per_class"]``, in order.
PER_CLASS_KEYS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "support", "proba_pos", "proba_neg")


def expected_calibration_error(proba: np.ndarray, y_idx: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: how far the model's confidence is from its accuracy, on average.

    Images are put in ``bins`` equal-width bins of confidence (the
    probability of the predicted class: (0, 0.1], (0.1, 0.2], ...); the ECE is
    the mean over images of ``|accuracy of the bin - mean confidence of the
    bin|``. 0 is perfect; a model "100 % sure" of everything at 82 % accuracy
    has 0.18.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    y_idx : ndarray of int, shape (n,)
        Positions of the true classes in the columns of ``proba``.
    bins : int, default=10

    Returns
    -------
    float
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) == 0:
        return 0.0
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y_idx)).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.abs(np.bincount(which, correct, minlength=bins) - np.bincount(which, confidence, minlength=bins))
    return float(gap.sum() / len(proba))


@dataclass(frozen=True)
class GroupAccuracy:
    """How often a model is right on the rows of one group (:func:`accuracy_by`).

    Attributes
    ----------
    group : int, float, str, bool or None
        The group's value (None for SQL NULL).
    n : int
        Rows in the group.
    right : int
        Rows the model got right.
    accuracy : float
        ``right / n``.
    """

    group: Any
    n: int
    right: int
    accuracy: float


def _natural(value: object) -> tuple[int, Any]:
    """Sort key putting numbers in numeric order, then strings, then anything else, then None."""
    if value is None:
        return (3, "")
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (2, str(value))


def accuracy_by(groups: Sequence[Any] | np.ndarray, actual: np.ndarray, predicted: np.ndarray) -> list[GroupAccuracy]:
    """Accuracy per group, the worst first.

    Parameters
    ----------
    groups : sequence of hashable values, length n
        The group of each row (a writer id, a label, ...).
    actual, predicted : ndarray, shape (n,)

    Returns
    -------
    list of GroupAccuracy
        One per distinct group, sorted by accuracy ascending; groups of equal
        accuracy in the groups' own order (numbers numerically).

    Raises
    ------
    UserError
        ``groups`` has another length than ``actual``, or unhashable values (arrays).
    """
    actual, predicted = np.asarray(actual), np.asarray(predicted)
    values = [v.item() if isinstance(v, np.generic) else v for v in groups]
    if len(values) != len(actual) or len(predicted) != len(actual):
        raise UserError(f"{len(values)} group values for {len(actual)} rows")
    right = actual == predicted
    index: dict[Any, list[int]] = {}
    try:
        for i, v in enumerate(values):
            index.setdefault(v, []).append(i)
    except TypeError:
        raise UserError("cannot group rows by a column whose values are lists or arrays (such as pixels); "
                        "group by a column of numbers or text") from None
    out = [GroupAccuracy(group=g, n=len(rows), right=int(right[rows].sum()),
                         accuracy=float(right[rows].mean())) for g, rows in index.items()]
    out.sort(key=lambda a: _natural(a.group))
    out.sort(key=lambda a: a.accuracy)  # stable: ties stay in the groups' order
    return out


def summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`SUMMARY_KEYS` present in ``metrics``, in that order."""
    return {k: metrics[k] for k in SUMMARY_KEYS if k in metrics}


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    metrics : dict
        See :func:`multiclass_metrics` / :func:`binary_metrics`.
    ids, actual, predicted : ndarray of int, shape (n,)
        ``actual`` is the model's target (for a binary model: 1 = "is the digit").
    proba : ndarray of float, shape (n, n_classes)
    classes : ndarray, shape (n_classes,)
    images : ndarray of uint8, shape (n, 28, 28)
    binary : bool
    groups : ndarray of object, shape (n,), or None
        Each row's group, when :func:`evaluate` was given ``groups``.
    """

    metrics: dict[str, Any]
    ids: np.ndarray
    actual: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    images: np.ndarray
    binary: bool
    groups: np.ndarray | None = None

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import evaluation_html
        return evaluation_html(self)

    def by_group(self) -> list[GroupAccuracy]:
        """Accuracy per group of :attr:`groups`, the worst first (:func:`accuracy_by`).

        Raises
        ------
        UserError
            The evaluation was made without ``groups``.
        """
        if self.groups is None:
            raise UserError("this evaluation has no groups: pass groups= to evaluate()")
        return accuracy_by(self.groups, self.actual, self.predicted)

    @property
    def probability(self) -> np.ndarray:
        """Probability given to the predicted class, shape (n,)."""
        k = np.searchsorted(self.classes, self.predicted)
        return self.proba[np.arange(len(k)), k]


def is_binary(est: DigitClassifier) -> bool:
    """True for one-class-vs-rest models (they have ``binary_target``)."""
    return hasattr(est, "binary_target")


def select_known(est: DigitClassifier, images: np.ndarray, labels: np.ndarray,
                 ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the rows whose label the model knows (all rows for binary models).

    A model trained on a subset of the digits (e.g. 2s and 3s) is evaluated on
    test images of those digits only.
    """
    keep = _known(est, labels)
    return images[keep], labels[keep], ids[keep]


def _known(est: DigitClassifier, labels: np.ndarray) -> np.ndarray:
    """Mask of the rows :func:`select_known` keeps."""
    if is_binary(est):
        return np.ones(len(labels), dtype=bool)
    keep = np.isin(labels, est.classes_)
    if not keep.any():
        raise UserError(f"no test image has a label the model knows ({np.asarray(est.classes_).tolist()})")
    return keep


def multiclass_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Accuracy, weighted F1, per-class metrics, mean probabilities and the confusion matrix.

    Parameters
    ----------
    y, pred : ndarray of shape (n,)
    proba : ndarray of shape (n, n_classes)
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    dict
        ``accuracy``, ``f1_weighted``, ``n``, ``classes``, ``confusion`` (rows:
        actual, columns: predicted), ``mean_proba_true`` (mean probability given
        to the true class), ``mean_proba_rest`` (mean probability given to each
        other class) and ``per_class``: ``{label: {accuracy (one-vs-rest),
        precision, recall, f1, support, proba_pos, proba_neg}}`` where
        ``proba_pos``/``proba_neg`` are the mean probability of the class on
        images of that class and of the others (the seed's table), and
        ``ece``, the expected calibration error (:func:`expected_calibration_error`).
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = np.asarray(classes)
    n = len(y)
    cm = confusion_matrix(y, pred, labels=labels)
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    yk = np.searchsorted(labels, y)
    p_true = proba[np.arange(n), yk]
    k = len(labels)
    per_class = {}
    for j, c in enumerate(labels):
        tp = cm[j, j]
        tn = n - cm[j, :].sum() - cm[:, j].sum() + tp
        pos = yk == j
        per_class[str(c)] = {
            "accuracy": float((tp + tn) / n), "precision": float(prec[j]), "recall": float(rec[j]),
            "f1": float(f1[j]), "support": int(sup[j]),
            "proba_pos": float(proba[pos, j].mean()) if pos.any() else None,
            "proba_neg": float(proba[~pos, j].mean()) if (~pos).any() else None,
        }
    return {
        "accuracy": float((y == pred).mean()),
        "f1_weighted": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
        "n": int(n),
        "classes": labels.tolist(),
        "mean_proba_true": float(p_true.mean()),
        "mean_proba_rest": float(((1 - p_true) / max(k - 1, 1)).mean()),
        "ece": expected_calibration_error(proba, yk),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def binary_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 of a 0/1 problem (1 = positive).

    Parameters
    ----------
    y, pred : ndarray of 0/1, shape (n,)
    proba : ndarray of shape (n, 2)

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``n``, ``positives``,
        ``confusion`` (2x2), ``proba_pos`` / ``proba_neg`` (mean P(positive) on
        positive and negative images), ``ece`` (:func:`expected_calibration_error`).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    prec, rec, f1, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    pos = y == 1
    return {
        "accuracy": float((y == pred).mean()), "precision": float(prec), "recall": float(rec), "f1": float(f1),
        "n": len(y), "positives": int(pos.sum()), "classes": [0, 1],
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "proba_pos": float(proba[pos, 1].mean()) if pos.any() else None,
        "proba_neg": float(proba[~pos, 1].mean()) if (~pos).any() else None,
        "ece": expected_calibration_error(proba, np.asarray(y, dtype=np.int64)),
    }


def evaluate(est: DigitClassifier, images: np.ndarray, labels: np.ndarray, ids: np.ndarray | None = None,
             progress: ProgressFn | None = None, groups: Sequence[Any] | np.ndarray | None = None) -> Evaluation:
    """Predict ``images`` with a fitted model and compute its metrics.

    Parameters
    ----------
    est : fitted digitlab classifier
    images : ndarray of uint8, shape (n, 28, 28) or (n, 784)
    labels : ndarray of int, shape (n,)
        Digit labels. Rows with labels the model does not know are dropped
        (:func:`select_known`); binary models compare with ``est.binary_target``.
    ids : ndarray of int, shape (n,), optional
    progress : callable, optional
        ``progress("predict", done, total)`` after each block of images.
    groups : sequence, length n, optional
        Each row's group (a writer id, ...): kept in :attr:`Evaluation.groups`
        for :meth:`Evaluation.by_group`.

    Returns
    -------
    Evaluation
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    ids = np.arange(len(labels)) if ids is None else np.asarray(ids)
    group_of: np.ndarray | None = None
    if groups is not None:
        group_of = np.empty(len(groups), dtype=object)
        for i, g in enumerate(groups):  # one by one: a list value stays one object
            group_of[i] = g.item() if isinstance(g, np.generic) else g
        if len(group_of) != len(labels):
            raise UserError(f"{len(group_of)} group values for {len(labels)} rows")
    keep = _known(est, labels)
    images, labels, ids = images[keep], labels[keep], ids[keep]
    if group_of is not None:
        group_of = group_of[keep]
    if len(labels) == 0:
        raise UserError("nothing to evaluate: the dataset selection is empty")
    flat = images.reshape(len(images), -1)
    parts = []
    for a in range(0, len(flat), _CHUNK):
        parts.append(np.asarray(est.predict_proba(flat[a:a + _CHUNK]), dtype=np.float64))
        if progress is not None:
            progress("predict", min(a + _CHUNK, len(flat)), len(flat))
    proba = np.concatenate(parts)
    classes = np.asarray(est.classes_)
    pred = classes[np.argmax(proba, axis=1)]
    if is_binary(est):
        y = est.binary_target(labels)
        metrics = binary_metrics(y, pred, proba)
    else:
        y = labels
        metrics = multiclass_metrics(y, pred, proba, classes)
    return Evaluation(metrics, ids, np.asarray(y), np.asarray(pred), proba, classes,
                      images.reshape(len(images), 28, 28) if flat.shape[1] == 784 else images, is_binary(est),
                      group_of)
