"""Metrics of a fitted classifier on labelled images, and the HTML report.

:func:`evaluate` predicts a dataset and returns :class:`Evaluation` (metrics
plus per-image predictions); :func:`write_report` turns it into a
self-contained HTML page with PNG figures (matplotlib, Agg backend).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlab._io import atomic_write_bytes, atomic_write_text
from digitlab.errors import UserError

__all__ = ["Evaluation", "binary_metrics", "evaluate", "is_binary", "multiclass_metrics", "select_known", "weight_images",
           "write_report"]

_CHUNK = 2000


@dataclass
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
    """

    metrics: dict[str, Any]
    ids: np.ndarray
    actual: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    images: np.ndarray
    binary: bool

    @property
    def probability(self) -> np.ndarray:
        """Probability given to the predicted class, shape (n,)."""
        k = np.searchsorted(self.classes, self.predicted)
        return self.proba[np.arange(len(k)), k]


def is_binary(est: Any) -> bool:
    """True for one-class-vs-rest models (they have ``binary_target``)."""
    return hasattr(est, "binary_target")


def select_known(est: Any, images: np.ndarray, labels: np.ndarray,
                 ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the rows whose label the model knows (all rows for binary models).

    A model trained on a subset of the digits (e.g. 2s and 3s) is evaluated on
    test images of those digits only.
    """
    if is_binary(est):
        return images, labels, ids
    keep = np.isin(labels, est.classes_)
    if not keep.any():
        raise UserError(f"no test image has a label the model knows ({np.asarray(est.classes_).tolist()})")
    return images[keep], labels[keep], ids[keep]


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
        images of that class and of the others (the seed's table).
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
        positive and negative images).
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
    }


def evaluate(est: Any, images: np.ndarray, labels: np.ndarray, ids: np.ndarray | None = None,
             progress: Any = None) -> Evaluation:
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

    Returns
    -------
    Evaluation
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    ids = np.arange(len(labels)) if ids is None else np.asarray(ids)
    images, labels, ids = select_known(est, images, labels, ids)
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
                      images.reshape(len(images), 28, 28) if flat.shape[1] == 784 else images, is_binary(est))


# ---------------------------------------------------------------------------------------------------- report


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _confusion_fig(cm: np.ndarray, labels: list[Any], log: bool) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    data = cm.astype(float)
    norm = LogNorm(vmin=1, vmax=max(data.max(), 2)) if log else None
    im = ax.imshow(np.where(data > 0, data, np.nan) if log else data, cmap="viridis", norm=norm)
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(len(labels)), [str(v) for v in labels])
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("confusion matrix" + (" (log scale)" if log else ""))
    if not log:
        top = data.max() or 1
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="black" if cm[i, j] > top / 2 else "white")
    return _png(fig)


def _gallery_fig(ev: Evaluation, limit: int = 40) -> bytes | None:
    import matplotlib.pyplot as plt

    wrong = np.flatnonzero(ev.actual != ev.predicted)[:limit]
    if wrong.size == 0:
        return None
    cols = 10
    rows = int(np.ceil(len(wrong) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(ev.images[i], cmap="gray_r")
        ax.set_title(f"{ev.actual[i]}→{ev.predicted[i]}\nid {ev.ids[i]}", fontsize=7)
    fig.suptitle("misclassified (true→predicted)", fontsize=9)
    return _png(fig)


def _proba_fig(ev: Evaluation) -> bytes:
    import matplotlib.pyplot as plt

    k = np.searchsorted(ev.classes, ev.actual)
    p_true = ev.proba[np.arange(len(k)), k]
    p_max = ev.proba.max(axis=1)
    ok = ev.actual == ev.predicted
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    bins = np.linspace(0, 1, 41)
    axes[0].hist(p_true, bins=bins, log=True, color="tab:blue")
    axes[0].set_title("probability given to the true class")
    axes[1].hist([p_max[ok], p_max[~ok]], bins=bins, log=True, label=["correct", "wrong"],
                 color=["tab:green", "tab:red"])
    axes[1].set_title("probability of the predicted class")
    axes[1].legend()
    return _png(fig)


def _bar_fig(counts: dict[str, int], title: str) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(counts), list(counts.values()), color="tab:gray")
    ax.set_title(title)
    ax.set_xlabel("label")
    return _png(fig)


def weight_images(est: Any) -> tuple[str, list[str], np.ndarray] | None:
    """Per-class images worth showing: linear weights or class means.

    Returns
    -------
    (title, labels, images of shape (k, 28, 28)) or None
    """
    if hasattr(est, "centroids_") and est.centroids_.shape[-1] == 784:
        return "mean image per class", [str(c) for c in est.classes_], est.centroids_.reshape(-1, 28, 28)
    coef = getattr(est, "coef_", None)
    if coef is None:
        return None
    coef = np.atleast_2d(np.asarray(coef))
    if coef.shape[-1] != 784:
        return None
    names = [f"is {est.digit}"] if coef.shape[0] == 1 and is_binary(est) else [str(c) for c in est.classes_]
    return "coefficients per class (red +, blue -)", names, coef.reshape(-1, 28, 28)


def _weights_fig(title: str, names: list[str], imgs: np.ndarray, signed: bool) -> bytes:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(imgs), figsize=(1.3 * len(imgs), 1.6), squeeze=False)
    for ax, name, img in zip(axes[0], names, imgs, strict=True):
        if signed:
            m = float(np.abs(img).max()) or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            ax.imshow(img, cmap="gray_r")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def write_report(directory: str | Path, ev: Evaluation, *, title: str, est: Any = None,
                 train_counts: dict[str, int] | None = None, info: dict[str, Any] | None = None) -> Path:
    """Write ``index.html`` (figures embedded as data URIs) and the PNG figures into ``directory``.

    Parameters
    ----------
    ev : Evaluation
    title : str
    est : fitted model, optional
        For the coefficient (linear) or mean (centroid) images.
    train_counts : dict, optional
        Training images per label (from the model card).
    info : dict, optional
        Extra key/value lines shown at the top (model, dataset, run id, ...).

    Returns
    -------
    Path of ``index.html``.
    """
    import matplotlib
    matplotlib.use("Agg")

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str, bytes]] = []
    cm = np.asarray(ev.metrics["confusion"])
    labels = list(ev.metrics["classes"])
    figures.append(("confusion.png", "Confusion matrix", _confusion_fig(cm, labels, log=False)))
    figures.append(("confusion_log.png", "Confusion matrix, log scale", _confusion_fig(cm, labels, log=True)))
    gallery = _gallery_fig(ev)
    if gallery is not None:
        figures.append(("misclassified.png", "Misclassified images", gallery))
    figures.append(("probabilities.png", "Predicted probabilities", _proba_fig(ev)))
    if train_counts:
        figures.append(("train_distribution.png", "Training class distribution",
                        _bar_fig(train_counts, "training images per label")))
    if est is not None:
        w = weight_images(est)
        if w is not None:
            figures.append(("weights.png", w[0].capitalize(),
                            _weights_fig(w[0], w[1], w[2], signed=not hasattr(est, "centroids_"))))
    for name, _, data in figures:
        atomic_write_bytes(out / name, data)

    m = ev.metrics
    esc = html.escape
    head = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in (info or {}).items())
    if ev.binary:
        summary = {k: m[k] for k in ("accuracy", "precision", "recall", "f1", "n", "positives", "proba_pos",
                                     "proba_neg")}
    else:
        summary = {k: m[k] for k in ("accuracy", "f1_weighted", "n", "mean_proba_true", "mean_proba_rest")}
    head += "".join(f"<tr><th>{esc(k)}</th><td>{v:.4f}</td></tr>" if isinstance(v, float) else
                    f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in summary.items())
    per = ""
    if not ev.binary:
        cols = ["accuracy", "precision", "recall", "f1", "support", "proba_pos", "proba_neg"]
        per = ("<h2>Per-class metrics</h2><table><tr><th>label</th>" + "".join(f"<th>{c}</th>" for c in cols)
               + "</tr>" + "".join(
                   "<tr><td>" + esc(lab) + "</td>" + "".join(
                       f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{v}</td>" for v in
                       (row[c] for c in cols)) + "</tr>" for lab, row in m["per_class"].items()) + "</table>")
    body = "".join(f"<h2>{esc(cap)}</h2><img alt='{esc(cap)}' src='data:image/png;base64,"
                   f"{base64.b64encode(data).decode()}'>" for _, cap, data in figures)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}</style></head>"
            f"<body><h1>{esc(title)}</h1><table>{head}</table>{per}{body}</body></html>")
    index = out / "index.html"
    atomic_write_text(index, page)
    return index
