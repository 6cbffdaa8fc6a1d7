"""The HTML report of an evaluation (``digitlab evaluate --report DIR``).

:func:`write_report` writes ``index.html`` with its figures embedded as data
URIs (the page is self-contained) and the same figures as PNG files beside it.
The figures are drawn by :mod:`digitlab.figures`; every file is written
atomically with the user's umask.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab import figures
from digitlab._io import atomic_write_bytes, atomic_write_text
from digitlab.evaluate import PER_CLASS_KEYS, Evaluation, is_binary, summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from digitlab.models.base import DigitClassifier

__all__ = ["class_names", "weight_images", "write_report"]

#: Facts of a binary (one digit vs the rest) evaluation shown after the summary metrics.
_BINARY_EXTRA = ("positives", "proba_pos", "proba_neg")


def weight_images(est: DigitClassifier) -> tuple[str, list[str], np.ndarray] | None:
    """Per-class images worth showing: linear weights or class means.

    Returns
    -------
    (title, labels, images of shape (k, 28, 28)) or None
        None when the model has neither (or they are not 784 pixels long).
    """
    centroids = getattr(est, "centroids_", None)
    if centroids is not None and np.shape(centroids)[-1] == 784:
        return "mean image per class", [str(c) for c in est.classes_], np.asarray(centroids).reshape(-1, 28, 28)
    coef = getattr(est, "coef_", None)
    if coef is None:
        return None
    coef = np.atleast_2d(np.asarray(coef))
    if coef.shape[-1] != 784:
        return None
    names = [f"is {est.digit}"] if coef.shape[0] == 1 and is_binary(est) else [str(c) for c in est.classes_]
    return "coefficients per class (red +, blue -)", names, coef.reshape(-1, 28, 28)


def class_names(ev: Evaluation, est: DigitClassifier | None = None) -> list[str]:
    """The names of the evaluation's classes, in order: the digits, or for a binary model ``"not D"`` and ``"D"``.

    A binary (one digit vs the rest) model's classes are 0 and 1, which read as
    the digits 0 and 1; they are named by the digit the model detects instead.
    """
    classes = [str(c) for c in ev.metrics["classes"]]
    if not ev.binary:
        return classes
    digit = getattr(est, "digit", None)
    return [f"not {digit}", str(digit)] if digit is not None else ["rest", "digit"]


def write_report(directory: str | os.PathLike[str], ev: Evaluation, *, title: str,
                 est: DigitClassifier | None = None, train_counts: Mapping[str, int] | None = None,
                 info: Mapping[str, object] | None = None) -> Path:
    """Write ``index.html`` (figures embedded as data URIs) and the PNG figures into ``directory``.

    Parameters
    ----------
    directory : path-like
        Created if needed.
    ev : Evaluation
    title : str
    est : fitted model, optional
        For the coefficient (linear) or mean (centroid) images.
    train_counts : mapping of str to int, optional
        Training images per label (from the model card).
    info : mapping, optional
        Extra key/value lines shown at the top (model, dataset, run id, ...).

    Returns
    -------
    Path
        Of ``index.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    drawn: list[tuple[str, str, Figure | None]] = []
    cm = np.asarray(ev.metrics["confusion"])
    labels = class_names(ev, est)
    drawn.append(("confusion.png", "Confusion matrix", figures.confusion_figure(cm, labels)))
    drawn.append(("confusion_log.png", "Confusion matrix, log scale", figures.confusion_figure(cm, labels, log=True)))
    drawn.append(("misclassified.png", "Misclassified images", figures.misclassified_figure(ev, names=labels)))
    drawn.append(("probabilities.png", "Predicted probabilities", figures.probabilities_figure(ev)))
    if train_counts:
        drawn.append(("train_distribution.png", "Training class distribution",
                      figures.bar_figure(train_counts, "training images per label")))
    if est is not None:
        w = weight_images(est)
        if w is not None:
            drawn.append(("weights.png", w[0].capitalize(),
                          figures.weights_figure(w[0], w[1], w[2], signed=not hasattr(est, "centroids_"))))
    pngs = [(name, caption, figures.png_bytes(fig)) for name, caption, fig in drawn if fig is not None]
    for name, _, data in pngs:
        atomic_write_bytes(out / name, data)

    m = ev.metrics
    esc = html.escape
    facts = {**(info or {}), **({"classes": " vs ".join(reversed(labels))} if ev.binary else {})}
    head = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items())
    shown = {**summary(m), **({k: m[k] for k in _BINARY_EXTRA if k in m} if ev.binary else {})}
    head += "".join(f"<tr><th>{esc(k)}</th><td>{v:.4f}</td></tr>" if isinstance(v, float) else
                    f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in shown.items())
    per = ""
    if not ev.binary:
        per = ("<h2>Per-class metrics</h2><table><tr><th>label</th>"
               + "".join(f"<th>{c}</th>" for c in PER_CLASS_KEYS) + "</tr>" + "".join(
                   "<tr><td>" + esc(lab) + "</td>" + "".join(
                       f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{v}</td>" for v in
                       (row[c] for c in PER_CLASS_KEYS)) + "</tr>" for lab, row in m["per_class"].items())
               + "</table>")
    body = "".join(f"<h2>{esc(cap)}</h2><img alt='{esc(cap)}' src='data:image/png;base64,"
                   f"{base64.b64encode(data).decode()}'>" for _, cap, data in pngs)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}</style></head>"
            f"<body><h1>{esc(title)}</h1><table>{head}</table>{per}{body}</body></html>")
    index = out / "index.html"
    atomic_write_text(index, page)
    return index
