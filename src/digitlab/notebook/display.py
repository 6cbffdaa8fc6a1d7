"""How digitlab's objects show themselves in a notebook: every rich display, drawn in one place.

The ``_repr_html_`` / ``_repr_png_`` methods of digitlab's classes are one-line
calls into this module, imported only when a notebook asks for a display:

* a fitted model, a :class:`~digitlab.models.io.LoadedModel` or a
  :class:`~digitlab.models.card.ModelCard`: :func:`model_html`, :func:`card_html`;
* an :class:`~digitlab.evaluate.Evaluation`: :func:`evaluation_html` (metrics,
  the confusion matrix, the misclassified digits);
* an :class:`~digitlab.explain.Explanation`: :func:`explanation_png` (the
  green/red picture), :func:`explanation_html` (the picture with its caption);
* a run or a list of runs (:mod:`digitlab.runs`): :func:`run_html`, :func:`runs_html`;
* a query result (:meth:`digitlab.store.Store.query`): :func:`query_html`, a table
  with every ``pixels`` column drawn as small digits.

:func:`beside` lays figures, pictures and displayable objects out side by side,
as the example notebooks show a seed's figure beside digitlab's.

Displays are plain HTML with pictures inlined as ``data:`` URIs: no script, no
style sheet, nothing fetched, so they look the same in JupyterLab, Notebook 7,
VS Code, Colab, nbconvert's HTML and a notebook viewer that sanitises HTML.
Nothing here needs the ``[notebook]`` extra: only matplotlib and Pillow.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from digitlab.evaluate import Evaluation
    from digitlab.explain import Explanation
    from digitlab.models.base import DigitClassifier
    from digitlab.models.card import ModelCard
    from digitlab.models.io import LoadedModel

__all__ = [
    "Beside",
    "beside",
    "card_html",
    "digit_png",
    "digits_html",
    "evaluation_html",
    "explanation_html",
    "explanation_png",
    "loaded_model_html",
    "model_html",
    "png_data_uri",
    "query_html",
    "run_html",
    "runs_html",
]

#: Most rows a query table shows; the rest are counted, not drawn (the result keeps them all).
MAX_QUERY_ROWS = 100
#: Most misclassified digits an evaluation shows.
MAX_WRONG = 30
_PIXELS = 784
_BOX = "font-family:sans-serif;font-size:13px;line-height:1.35"
_TH = "text-align:left;padding:2px 10px 2px 0;font-weight:600;vertical-align:top"
_TD = "text-align:left;padding:2px 10px 2px 0;vertical-align:top"
_NUM = "text-align:right;padding:2px 8px;font-variant-numeric:tabular-nums;vertical-align:top"
_IMG = "image-rendering:pixelated;display:block"
_MUTED = "color:#666"


# --------------------------------------------------------------------------------------- building blocks


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    """A cell's text: floats to 4 significant digits, None as an empty cell, containers as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float | np.floating):
        return format(float(value), ".4g")
    if isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, Mapping | list | tuple):
        return _compact_json(value)
    return str(value)


def _compact_json(value: object, limit: int = 160) -> str:
    from digitlab._json import to_jsonable

    text = json.dumps(to_jsonable(value), separators=(", ", ": "), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column table of (name, value) pairs; values already HTML when they start with '<'."""
    rows = "".join(f"<tr><th style='{_TH}'>{_esc(k)}</th><td style='{_TD}'>{_cell(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


class _Html(str):
    """Text that is already HTML (not escaped again by :func:`_cell`)."""


def _cell(value: object) -> str:
    return str(value) if isinstance(value, _Html) else _esc(_fmt(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[bool] | None = None) -> str:
    num = list(numeric) if numeric is not None else [False] * len(headers)
    head = "".join(f"<th style='{_NUM if n else _TH}'>{_esc(h)}</th>" for h, n in zip(headers, num, strict=True))
    body = "".join("<tr>" + "".join(f"<td style='{_NUM if n else _TD}'>{_cell(v)}</td>"
                                    for v, n in zip(row, num, strict=True)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, body: str) -> str:
    return f"<div style='margin-top:8px'><div style='font-weight:600;margin-bottom:2px'>{_esc(title)}</div>{body}</div>"


def _box(body: str, kind: str) -> str:
    return f"<div class='digitlab-{kind}' style='{_BOX}'>{body}</div>"


def png_data_uri(png: bytes) -> str:
    """A PNG as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _img(png: bytes, width: int, height: int, alt: str, title: str | None = None) -> str:
    tip = f" title='{_esc(title)}'" if title else ""
    return (f"<img src='{png_data_uri(png)}' width='{width}' height='{height}' alt='{_esc(alt)}'{tip} "
            f"style='{_IMG}'>")


def _as_digit(pixels: object) -> np.ndarray | None:
    """784 numbers (a list, tuple or array of any shape) as a (28, 28) float array, else None."""
    if isinstance(pixels, str | bytes | Mapping) or pixels is None:
        return None
    try:
        arr = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.size != _PIXELS or not np.isfinite(arr).all():
        return None
    return arr.reshape(28, 28)


def digit_png(pixels: object, scale: int = 2) -> bytes:
    """One digit (784 intensities 0-255, light ink on dark as in MNIST) as a PNG, dark ink on white.

    Parameters
    ----------
    pixels : array-like of 784 numbers, e.g. shape (28, 28) or (784,)
    scale : int, default=2
        Output pixels per input pixel (nearest neighbour, so the pixels stay sharp).

    Raises
    ------
    ValueError
        ``pixels`` is not 784 finite numbers, or ``scale`` is not in 1..32.
    """
    arr = _as_digit(pixels)
    if arr is None:
        raise ValueError(f"a digit is 784 finite numbers (28 x 28), got {np.shape(pixels)}")  # type: ignore[call-overload]
    if not 1 <= scale <= 32:
        raise ValueError(f"scale must be in 1..32, got {scale!r}")
    grey = 255 - np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return _png(grey.repeat(scale, 0).repeat(scale, 1))


def _digit_img(pixels: object, scale: int = 2, title: str | None = None) -> str:
    return _img(digit_png(pixels, scale), 28 * scale, 28 * scale, "digit", title)


def digits_html(images: Sequence[object] | np.ndarray, captions: Sequence[str] | None = None, *,
                scale: int = 2) -> str:
    """Digits in a wrapping row, each with an optional caption under it.

    Parameters
    ----------
    images : sequence of 784-pixel digits, or an array of shape (n, 28, 28) or (n, 784)
    captions : sequence of str, optional
    """
    caps = list(captions) if captions is not None else [""] * len(images)
    cells = "".join(f"<figure style='margin:0 6px 6px 0;text-align:center'>{_digit_img(img, scale)}"
                    f"<figcaption style='font-size:11px'>{_esc(cap)}</figcaption></figure>"
                    for img, cap in zip(images, caps, strict=True))
    return f"<div style='display:flex;flex-wrap:wrap'>{cells}</div>"


def _figure_png(fig: Figure, dpi: int = 80) -> bytes:
    from digitlab.figures import png_bytes

    return png_bytes(fig, dpi)


# ------------------------------------------------------------------------------------------------- models


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per evaluation set (test, validation, ...), the summary metrics as columns."""
    from digitlab.evaluate import SUMMARY_KEYS

    sets = [(name, m) for name, m in metrics.items() if isinstance(m, Mapping)]
    if not sets:
        return ""
    scalar = [k for k in SUMMARY_KEYS if any(k in m for _, m in sets)]
    scalar += sorted({k for _, m in sets for k, v in m.items()
                      if k not in scalar and isinstance(v, int | float) and not isinstance(v, bool)})
    extra = ["dataset"] if any("dataset" in m for _, m in sets) else []
    headers = ["set", *extra, *scalar]
    rows = [[name, *(m.get(k) for k in extra), *(m.get(k) for k in scalar)] for name, m in sets]
    return _table(headers, rows, [False] * (1 + len(extra)) + [True] * len(scalar))


def card_html(card: ModelCard, *, name: str | None = None, estimator: DigitClassifier | None = None) -> str:
    """A model card as HTML: what the model is, how well it does, what it was trained on, how to remake it.

    Parameters
    ----------
    card : ModelCard
    name : str, optional
        The saved model's name (shown as the title).
    estimator : fitted DigitClassifier, optional
        Adds what the estimator declares (family, explanation method) and its classes.
    """
    title = f"<b>{_esc(name)}</b> · " if name else ""
    title += f"<code>{_esc(card.model)}</code>"
    facts: list[tuple[str, object]] = []
    if estimator is not None:
        facts.append(("family", estimator.family))
        facts.append(("explanation", estimator.explanation.replace("_", " ")))
        classes = getattr(estimator, "classes_", None)
        if classes is not None:
            facts.append(("classes", " ".join(str(c) for c in np.asarray(classes).tolist())))
    acc = card.test_accuracy
    if acc is not None:
        title += f" · MNIST test accuracy <b>{100 * acc:.2f}%</b>"
    parts = [f"<div style='font-size:14px'>{title}</div>"]
    if facts:
        parts.append(_kv_table(facts))
    metrics = _metrics_table(card.metrics)
    if metrics:
        parts.append(_section("metrics", metrics))
    if card.train is not None:
        t = card.train
        train: list[tuple[str, object]] = [("dataset", t.dataset), ("images", t.n)]
        if t.where:
            train.append(("where", _Html(f"<code>{_esc(t.where)}</code>")))
        if t.sample is not None:
            train.append(("stratified sample", t.sample))
        if t.sha256:
            train.append(("sha256", _Html(f"<code title='{_esc(t.sha256)}'>{_esc(t.sha256[:12])}…</code>")))
        if t.class_counts:
            train.append(("images per label", " ".join(f"{k}: {v}" for k, v in t.class_counts.items())))
        parts.append(_section("training data", _kv_table(train)))
    if card.params:
        parts.append(_section("parameters", _kv_table((k, "None" if v is None else v) for k, v in card.params.items())))
    made: list[tuple[str, object]] = []
    for label, value in (("created", card.created), ("digitlab", card.digitlab_version), ("seed", card.seed),
                         ("run", card.run), ("train seconds", card.train_seconds), ("machine", card.machine)):
        if value is not None:
            made.append((label, value))
    if card.command:
        made.append(("command", _Html(f"<code>{_esc(card.command)}</code>")))
    if made:
        parts.append(_section("provenance", _kv_table(made)))
    if card.notes:
        parts.append(_section("notes", _kv_table((k, v) for k, v in card.notes.items())))
    return _box("".join(parts), "card")


def loaded_model_html(loaded: LoadedModel) -> str:
    """A loaded model: its card, named, with what its estimator declares."""
    return card_html(loaded.card, name=loaded.name, estimator=loaded.estimator)


def model_html(estimator: DigitClassifier) -> str:
    """A digitlab estimator: the card of a fitted one; scikit-learn's diagram while it is not fitted."""
    from digitlab.models import model_name_of
    from digitlab.models.card import ModelCard

    if not hasattr(estimator, "classes_"):
        from sklearn.utils import estimator_html_repr

        out: str = estimator_html_repr(estimator)
        return out
    try:
        model = model_name_of(estimator)
    except Exception:
        model = type(estimator).__name__
    card = ModelCard(model=model, params=estimator.get_params(deep=False))
    return card_html(card, name=f"fitted {type(estimator).__name__}", estimator=estimator)


# ----------------------------------------------------------------------------------------------- evaluations


def _confusion_html(cm: np.ndarray, labels: Sequence[object]) -> str:
    """The confusion matrix as a table (rows actual, columns predicted), cells shaded by their share of the row."""
    row_sum = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    head = "".join(f"<th style='{_NUM}'>{_esc(c)}</th>" for c in labels)
    body = ""
    for i, lab in enumerate(labels):
        cells = ""
        for j in range(len(labels)):
            share = float(cm[i, j] / row_sum[i, 0])
            if i == j:
                colour = f"rgba(0,140,60,{0.15 + 0.6 * share:.2f})"
            elif cm[i, j]:
                colour = f"rgba(210,40,40,{min(0.12 + 3 * share, 0.8):.2f})"
            else:
                colour = "transparent"
            cells += f"<td style='{_NUM};background:{colour}'>{int(cm[i, j])}</td>"
        body += f"<tr><th style='{_NUM}'>{_esc(lab)}</th>{cells}</tr>"
    return (f"<table class='digitlab-confusion'><thead><tr><th style='{_NUM};{_MUTED}'>actual ↓ predicted →</th>"
            f"{head}</tr></thead><tbody>{body}</tbody></table>")


def evaluation_html(ev: Evaluation, max_wrong: int = MAX_WRONG) -> str:
    """An evaluation: its summary metrics, per-class metrics, the confusion matrix and the first misclassified digits.

    Parameters
    ----------
    ev : Evaluation
    max_wrong : int, default=MAX_WRONG
        Most misclassified digits drawn (the count says how many there are).
    """
    from digitlab.evaluate import PER_CLASS_KEYS, SUMMARY_KEYS

    m = ev.metrics
    n = len(ev.actual)
    scalar = [k for k in SUMMARY_KEYS if k in m]
    scalar += [k for k, v in m.items() if k not in scalar and isinstance(v, int | float) and not isinstance(v, bool)]
    title = f"<div style='font-size:14px'>Evaluation on <b>{n}</b> images"
    if "accuracy" in m:
        title += f" · accuracy <b>{100 * float(m['accuracy']):.2f}%</b>"
    title += " (one digit vs the rest)" if ev.binary else ""
    parts = [title + "</div>", _section("metrics", _table(scalar, [[m[k] for k in scalar]], [True] * len(scalar)))]
    if "confusion" in m:
        labels = list(m.get("classes", range(len(m["confusion"]))))
        if ev.binary:
            labels = ["rest", "is"] if len(labels) == 2 else labels
        parts.append(_section("confusion matrix", _confusion_html(np.asarray(m["confusion"]), labels)))
    per = m.get("per_class")
    if isinstance(per, Mapping) and per:
        keys = [k for k in PER_CLASS_KEYS if any(k in row for row in per.values())]
        parts.append(_section("per class", _table(["label", *keys], [[lab, *(row.get(k) for k in keys)]
                                                                    for lab, row in per.items()],
                                                  [False] + [True] * len(keys))))
    wrong = np.flatnonzero(np.asarray(ev.actual) != np.asarray(ev.predicted))
    if wrong.size:
        shown = wrong[:max_wrong]
        p = ev.probability
        name = {0: "rest", 1: "is"} if ev.binary else {}
        caps = [f"{name.get(int(ev.actual[i]), ev.actual[i])}→{name.get(int(ev.predicted[i]), ev.predicted[i])} "
                f"({100 * p[i]:.0f}%)" for i in shown]
        more = f", the first {len(shown)} shown" if wrong.size > len(shown) else ""
        parts.append(_section(f"misclassified: {wrong.size} of {n}{more} (true→predicted, probability)",
                              "<div class='digitlab-misclassified'>"
                              + digits_html([ev.images[i] for i in shown], caps) + "</div>"))
    else:
        parts.append(_section("misclassified", "none"))
    return _box("".join(parts), "evaluation")


# ---------------------------------------------------------------------------------------------- explanations


def explanation_png(expl: Explanation, scale: int = 8) -> bytes:
    """The green/red picture of an explanation (:func:`digitlab.figures.explanation_image`) as PNG bytes.

    Green pixels push towards the explained digit, red ones away, over the faint
    digit when the explanation carries its image.
    """
    from digitlab.figures import explanation_image

    image = getattr(expl, "image", None)
    return _png(explanation_image(expl.contributions, np.zeros(_PIXELS) if image is None else image, scale=scale))


def explanation_html(expl: Explanation, scale: int = 8) -> str:
    """The explanation's picture with the explained digit, the method and how to read the colours."""
    image = getattr(expl, "image", None)
    side = 28 * scale
    pics = ""
    if image is not None:
        pics += (f"<figure style='margin:0 10px 0 0'>{_digit_img(image, scale)}"
                 "<figcaption style='font-size:11px'>the digit</figcaption></figure>")
    pics += (f"<figure style='margin:0'>{_img(explanation_png(expl, scale), side, side, 'explanation')}"
             "<figcaption style='font-size:11px'>the explanation</figcaption></figure>")
    caption = (f"Why <b>{int(expl.digit)}</b>: <span style='color:#0a8a2a'>green</span> pixels speak for it, "
               f"<span style='color:#c81414'>red</span> against · {_esc(str(expl.method).replace('_', ' '))}")
    return _box(f"<div style='display:flex;align-items:flex-start'>{pics}</div><div>{caption}</div>",
                "explanation")


# ------------------------------------------------------------------------------------------------------ runs


def _run_dict(run: object) -> dict[str, Any]:
    if hasattr(run, "as_dict"):
        d: dict[str, Any] = dict(run.as_dict())
        return d
    if dataclasses.is_dataclass(run) and not isinstance(run, type):
        return dataclasses.asdict(run)
    return dict(vars(run))


def _run_value(key: str, value: object) -> object:
    """What a runs table shows of one field: the summary of metrics, params as k=v."""
    from digitlab.evaluate import summary

    if key == "metrics" and isinstance(value, Mapping):
        shown = summary(value) or {k: v for k, v in value.items() if isinstance(v, int | float)}
        return ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items())
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if hasattr(value, "isoformat"):
        return str(value)[:19]
    return value


def run_html(run: object) -> str:
    """One run (:class:`digitlab.runs.Run`) as a table of its fields, its metrics in full."""
    d = _run_dict(run)
    metrics = d.pop("metrics", None)
    rid = d.get("run", "")
    parts = [f"<div style='font-size:14px'>run <code>{_esc(rid)}</code></div>",
             _kv_table((k, _run_value(k, v)) for k, v in d.items() if k != "run" and v not in (None, {}, ""))]
    if isinstance(metrics, Mapping) and metrics:
        flat = [(k, v) for k, v in metrics.items() if not isinstance(v, Mapping | list)]
        parts.append(_section("metrics", _kv_table(flat)))
        if "confusion" in metrics and "classes" in metrics:
            parts.append(_section("confusion matrix", _confusion_html(np.asarray(metrics["confusion"]),
                                                                      list(metrics["classes"]))))
    return _box("".join(parts), "run")


#: The fields a list of runs shows, in order, when the runs have them (one run shows every field).
RUN_COLUMNS = ("run", "kind", "model_name", "model_version", "model_type", "params", "dataset", "where_clause",
               "train_size", "accuracy", "train_seconds", "created")
_PARAMS_WIDTH = 60


def runs_html(runs: Sequence[object]) -> str:
    """Runs as one table, one row per run: the :data:`RUN_COLUMNS` they have (all their fields if none).

    Parameters are cut to a short line; a single run's display (:func:`run_html`) has every field in full.
    """
    dicts = [_run_dict(r) for r in runs]
    if not dicts:
        return _box("<i>no runs recorded</i>", "runs")
    present: list[str] = []
    for d in dicts:
        present += [k for k in d if k not in present]
    columns = [c for c in RUN_COLUMNS if c in present]
    if len(columns) < 2:
        columns = present

    def cell(name: str, value: object) -> object:
        if name == "run":
            return _Html(f"<code style='white-space:nowrap'>{_esc(value)}</code>")
        shown = _run_value(name, value)
        if name == "params" and isinstance(shown, str) and len(shown) > _PARAMS_WIDTH:
            return _Html(f"<span title='{_esc(shown)}'>{_esc(shown[:_PARAMS_WIDTH - 1])}…</span>")
        return shown

    rows = [[cell(c, d.get(c)) for c in columns] for d in dicts]
    numeric = [all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows if r[i] is not None)
               and any(r[i] is not None for r in rows) for i in range(len(columns))]
    caption = f"{len(dicts)} run{'s' if len(dicts) != 1 else ''}"
    if len(columns) < len(present):
        caption += " (a run shows all its fields: display one, e.g. <code>runs[0]</code>)"
    return _box(f"<div>{caption}</div>" + _table(columns, rows, numeric), "runs")


# --------------------------------------------------------------------------------------------- query results


def _columns_rows(result: object, limit: int) -> tuple[list[str], list[Sequence[object]], int]:
    """Column names, the first ``limit`` rows and the row count of a query result, whichever shape it has.

    Takes a :class:`~digitlab.store.QueryResult` or anything with an ``arrow()`` method (only the first
    ``limit`` rows are converted to Python), a ``pyarrow.Table``, or anything with ``columns`` and ``rows``.
    """
    table: Any = result.arrow() if callable(getattr(result, "arrow", None)) else result  # type: ignore[attr-defined]
    if hasattr(table, "read_all"):  # a RecordBatchReader
        table = table.read_all()
    if hasattr(table, "column_names") and hasattr(table, "slice"):
        head = table.slice(0, limit)
        columns = [c.to_pylist() for c in head.columns]
        return [str(c) for c in table.column_names], [list(r) for r in zip(*columns, strict=True)], \
            int(table.num_rows)
    names = getattr(result, "columns", None)
    rows = getattr(result, "rows", None)
    if names is not None and rows is not None:
        data = list(rows() if callable(rows) else rows)
        return [str(c) for c in (names() if callable(names) else names)], data[:limit], len(data)
    raise TypeError(f"cannot show {type(result).__name__} as a table: it has neither columns and rows nor arrow()")


def query_html(result: object, max_rows: int = MAX_QUERY_ROWS) -> str:
    """A query result as a table; a ``pixels`` column (or any 784-number column) is drawn as small digits.

    Parameters
    ----------
    result : QueryResult, or anything with ``arrow()``, or a ``pyarrow.Table``
    max_rows : int, default=MAX_QUERY_ROWS
        Rows drawn; the caption tells how many the result has.
    """
    cols, rows, total = _columns_rows(result, max_rows)
    pictures = [c.lower() == "pixels" or (bool(rows) and all(_as_digit(r[i]) is not None for r in rows))
                for i, c in enumerate(cols)]
    pictures = [p and bool(rows) and all(_as_digit(r[i]) is not None or r[i] is None for r in rows)
                for i, p in enumerate(pictures)]
    numeric = [not p and bool(rows) and all(isinstance(r[i], int | float | np.number) and not isinstance(r[i], bool)
                                            for r in rows if r[i] is not None) for i, p in enumerate(pictures)]

    def cell(value: object, i: int) -> object:
        if pictures[i]:
            return "" if value is None else _Html(_digit_img(value, 2))
        return value

    table = _table(cols, [[cell(v, i) for i, v in enumerate(r)] for r in rows], numeric)
    caption = f"{total} row{'s' if total != 1 else ''}"
    if total > len(rows):
        caption += f", the first {len(rows)} shown"
    return _box(f"<div style='{_MUTED}'>{caption}</div>{table}", "query")


# ------------------------------------------------------------------------------------------------ side by side


def _item_html(item: object) -> str:
    """One item of :func:`beside` as HTML."""
    from matplotlib.figure import Figure

    if isinstance(item, Figure):
        png = _figure_png(item)
        _close_pyplot(item)
        from PIL import Image

        w, h = Image.open(io.BytesIO(png)).size
        return _img(png, w, h, "figure")
    if isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim in (2, 3):
        if item.size == _PIXELS:
            return _digit_img(item, 4)
        return _img(_png(item), item.shape[1], item.shape[0], "picture")
    repr_html = getattr(item, "_repr_html_", None)
    if callable(repr_html):
        out = repr_html()
        if isinstance(out, str):
            return out
    repr_png = getattr(item, "_repr_png_", None)
    if callable(repr_png):
        png = repr_png()
        if isinstance(png, bytes):
            from PIL import Image

            w, h = Image.open(io.BytesIO(png)).size
            return _img(png, w, h, "picture")
    return f"<pre>{_esc(item)}</pre>"


def _close_pyplot(fig: Figure) -> None:
    """Close a pyplot figure once it is drawn here, so the inline backend does not show it a second time."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and getattr(fig.canvas, "manager", None) is not None:
        plt.close(fig)


@dataclasses.dataclass(frozen=True)
class Beside:
    """Items shown side by side in a notebook (see :func:`beside`)."""

    items: tuple[object, ...]
    titles: tuple[str, ...]

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<figure style='margin:0 18px 10px 0'><figcaption style='font-weight:600;margin-bottom:4px'>"
            f"{_esc(t)}</figcaption>{_item_html(item)}</figure>"
            for item, t in zip(self.items, self.titles, strict=True))
        return f"<div class='digitlab-beside' style='display:flex;flex-wrap:wrap;align-items:flex-start;{_BOX}'>" \
               f"{cells}</div>"


def beside(*items: object, titles: Sequence[str] | None = None) -> Beside:
    """Show figures, pictures and displayable objects side by side in a notebook.

    Parameters
    ----------
    *items : matplotlib figures (a pyplot figure is closed once drawn, so it is not shown
        twice), ``uint8`` pictures (a 28x28 one is drawn as a digit), objects with
        ``_repr_html_`` or ``_repr_png_`` (digitlab's evaluations, explanations, ...), or
        anything else as text
    titles : sequence of str, optional
        One title per item; by default ``"the seed"`` and ``"digitlab"`` for two items.

    Returns
    -------
    Beside
        Displays itself; ``display(beside(a, b))`` or leave it last in a cell.

    Raises
    ------
    ValueError
        ``titles`` does not have one title per item.
    """
    if titles is None:
        titles = ["the seed", "digitlab"] if len(items) == 2 else [""] * len(items)
    if len(titles) != len(items):
        raise ValueError(f"beside needs one title per item: {len(items)} items, {len(titles)} titles")
    return Beside(tuple(items), tuple(str(t) for t in titles))
