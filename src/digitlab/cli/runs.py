"""``digitlab runs`` and ``digitlab compare``: the recorded training, evaluation and cross-validation runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from digitlab.cli._common import FormatOption, HomeOption, OutputFormat, emit, settings_from

__all__ = ["compare_command", "runs_command"]


def runs_command(
    model: str | None = typer.Option(None, "--model", help="Only runs of this model type or name."),
    limit: int = typer.Option(50, "--limit", help="Show at most this many runs (newest first)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """List recorded runs: model, params, accuracy, train seconds, date."""
    from digitlab.runs import list_runs
    from digitlab.store import Store

    runs = list_runs(Store(settings_from(home=home).store_path), model=model, limit=limit)
    emit([{k: v for k, v in r.as_dict().items() if k != "metrics"} for r in runs], fmt,
         columns=["run", "kind", "name", "model", "params", "dataset", "accuracy", "train s", "created"],
         rows=[(r.run, r.kind, r.model_name, r.model_type, _short_params(r.params),
                (r.dataset or "") + (f" where {r.where_clause}" if r.where_clause else ""), r.accuracy,
                r.train_seconds, f"{r.created:%Y-%m-%d %H:%M}") for r in runs])


def _short_params(params: Mapping[str, Any], width: int = 60) -> str:
    text = " ".join(f"{k}={v}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def compare_command(
    runs: list[str] = typer.Argument(..., help="Two or more run ids (unique prefixes work)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Put runs side by side: overall metrics, then recall and F1 per class."""
    from digitlab.evaluate import SUMMARY_KEYS
    from digitlab.runs import get_run
    from digitlab.store import Store

    store = Store(settings_from(home=home).store_path)
    found = [get_run(store, r) for r in runs]
    metric_rows: list[tuple[Any, ...]] = []
    for key in SUMMARY_KEYS:
        vals = [_metric(r.metrics, key) for r in found]
        if any(v is not None for v in vals):
            metric_rows.append((key, *vals))
    metric_rows.append(("train_seconds", *(r.train_seconds for r in found)))
    labels = sorted({lab for r in found for lab in r.metrics.get("per_class", {})}, key=_label_key)
    for lab in labels:
        for key in ("recall", "f1"):
            metric_rows.append((f"{key} [{lab}]", *(r.metrics.get("per_class", {}).get(lab, {}).get(key)
                                                     for r in found)))
    result = {"runs": [r.as_dict() for r in found],
              "table": [{"metric": row[0], **{r.run: v for r, v in zip(found, row[1:], strict=True)}}
                        for row in metric_rows]}
    emit(result, fmt, columns=["metric", *(f"{r.run}\n{r.model_name or r.model_type}" for r in found)],
         rows=metric_rows)


def _metric(metrics: Mapping[str, Any], key: str) -> Any:
    """``metrics[key]``, or for a cross-validation run the mean over its folds."""
    if key in metrics:
        return metrics[key]
    return metrics.get("mean", {}).get(key)


def _label_key(label: str) -> tuple[int, str]:
    return (int(label), label) if label.lstrip("-").isdigit() else (1 << 30, label)
