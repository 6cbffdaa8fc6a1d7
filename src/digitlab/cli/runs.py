"""``digitlab runs`` (list, ``export --mlflow``) and ``digitlab compare``: the recorded runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from digitlab.cli._common import FormatOption, HomeOption, OutputFormat, emit, settings_from
from digitlab.errors import UserError

if TYPE_CHECKING:
    from digitlab.runs import Run

__all__ = ["compare_command", "runs_app"]

runs_app = typer.Typer(help="Recorded runs: list them (the default), or export them for MLflow.")


@runs_app.callback(invoke_without_command=True)
def runs_command(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", help="Only runs of this model type or name."),
    limit: int = typer.Option(50, "--limit", help="Show at most this many runs (newest first)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """List recorded runs, newest first: short id, kind, model and version, params, accuracy, seconds, date.

    The short id (the shortest unique prefix of the run's random part, as git
    abbreviates commits) is what 'digitlab compare' takes; so does any unique
    prefix of the whole id.
    """
    if ctx.invoked_subcommand is not None:
        return
    _list(model, limit, home, fmt)


def _list(model: str | None, limit: int, home: Path | None, fmt: OutputFormat) -> None:
    from digitlab.runs import list_runs, short_ids
    from digitlab.store import Store

    store = Store(settings_from(home=home).store_path)
    runs = list_runs(store, model=model, limit=limit)
    shorts = short_ids(store)
    emit([{"id": shorts.get(r.run, r.run), **{k: v for k, v in r.as_dict().items() if k != "metrics"}}
          for r in runs], fmt,
         columns=["id", "kind", "model", "params", "data", "accuracy", "train s", "created"],
         rows=[(shorts.get(r.run, r.run), r.kind, _model_text(r), _params_text(r.params),
                _data_text(r.dataset, r.where_clause, r.train_size), r.accuracy, r.train_seconds,
                f"{r.created:%Y-%m-%d %H:%M}") for r in runs])


def _model_text(r: Run) -> str:
    """``NAME@vN``, with the model type when the name is not the type, or the type alone."""
    if r.model_ref is None:
        return r.model_type or ""
    return r.model_ref if r.model_name == r.model_type else f"{r.model_ref} ({r.model_type})"


def _params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


def _data_text(dataset: str | None, where: str | None, n: int | None) -> str:
    return (dataset or "") + (f" where {where}" if where else "") + (f" (n={n})" if n is not None else "")


@runs_app.command("list")
def list_command(
    model: str | None = typer.Option(None, "--model", help="Only runs of this model type or name."),
    limit: int = typer.Option(50, "--limit", help="Show at most this many runs (newest first)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """List recorded runs (the same as plain 'digitlab runs')."""
    _list(model, limit, home, fmt)


@runs_app.command("export")
def export_command(
    mlflow: Path = typer.Option(..., "--mlflow", metavar="DIR", help="Write an MLflow file store into this folder."),
    experiment: str = typer.Option("digitlab", "--experiment", help="MLflow experiment name."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Export every run to an MLflow file store, so that 'mlflow ui' browses them (needs the mlflow extra).

    Parameters, metrics (the CNN's epochs as steps), tags (git commit, data
    checksum, environment, artifact links) and the whole record as an
    artifact. Exporting again adds only the new runs.
    """
    from digitlab.runs import export_mlflow
    from digitlab.store import Store

    result = export_mlflow(Store(settings_from(home=home).store_path), mlflow, experiment=experiment)
    doc = {"path": result.path, "experiment": experiment, "experiment_id": result.experiment_id,
           "exported": list(result.exported), "skipped": list(result.skipped)}
    emit(doc, fmt, title=f"{len(result.exported)} run(s) exported to {result.path} ({len(result.skipped)} already "
                         f"there); browse with: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri "
                         f"{result.path}",
         columns=["exported run"], rows=[(r,) for r in result.exported])


def compare_command(
    runs: list[str] = typer.Argument(..., help="Two or more runs: short ids from 'digitlab runs', unique "
                                               "prefixes of whole ids, or latest, latest~1, ..."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw the runs' metrics side by side into this PNG."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Put runs side by side: model and data, parameters, overall metrics, then recall and F1 per class."""
    from digitlab.evaluate import SUMMARY_KEYS
    from digitlab.runs import get_run, short_ids
    from digitlab.store import Store

    if plot is not None and plot.suffix.lower() != ".png":
        raise UserError(f"--plot must be a .png file, got {str(plot)!r}")
    store = Store(settings_from(home=home).store_path)
    found = [get_run(store, r) for r in runs]
    shorts = short_ids(store)
    rows: list[tuple[Any, ...]] = [
        ("kind", *(r.kind for r in found)),
        ("model", *(r.model_ref or r.model_type for r in found)),
        ("data", *(_data_text(r.dataset, r.where_clause, r.train_size) for r in found)),
        ("seed", *(r.seed for r in found)),
    ]
    param_keys = sorted({k for r in found for k, v in r.params.items() if v is not None})
    param_rows = [(f"param {k}", *(_param(r.params, k) for r in found)) for k in param_keys]
    metric_rows: list[tuple[Any, ...]] = []
    for key in SUMMARY_KEYS:
        vals = [_metric(r.metrics, key) for r in found]
        if any(v is not None for v in vals):
            metric_rows.append((key, *vals))
    metric_rows.append(("train_seconds", *(r.train_seconds for r in found)))
    labels = sorted({lab for r in found for lab in r.metrics.get("per_class", {})}, key=_label_key)
    per_class: dict[str, list[Any]] = {}
    for lab in labels:
        for key in ("recall", "f1"):
            vals = [r.metrics.get("per_class", {}).get(lab, {}).get(key) for r in found]
            metric_rows.append((f"{key} [{lab}]", *vals))
            if key == "f1":
                per_class[lab] = vals
    table = [*rows, *param_rows, *metric_rows]
    names = [shorts.get(r.run, r.run) for r in found]
    written = None
    if plot is not None:
        from digitlab.figures import compare_figure, save_figure

        # the rates (0-1) on one axis; counts such as n would flatten them
        summary = {row[0]: list(row[1:]) for row in metric_rows if row[0] in SUMMARY_KEYS
                   and all(v is None or 0 <= v <= 1 for v in row[1:])}
        written = save_figure(compare_figure([f"{n} {r.model_ref or r.model_type}" for n, r in zip(
            names, found, strict=True)], summary, per_class), plot)
    result = {"runs": [{"id": n, **r.as_dict()} for n, r in zip(names, found, strict=True)],
              "params": {r.run: r.params for r in found},
              "table": [{"metric": row[0], **{r.run: v for r, v in zip(found, row[1:], strict=True)}}
                        for row in table], "plot": written}
    emit(result, fmt, title=f"chart written to {written}" if written else None,
         columns=["", *(f"{n}\n{r.model_ref or r.model_type}" for n, r in zip(names, found, strict=True))],
         rows=table)


def _param(params: Mapping[str, Any], key: str) -> Any:
    value = params.get(key)
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def _metric(metrics: Mapping[str, Any], key: str) -> Any:
    """``metrics[key]``, or for a cross-validation run the mean over its folds."""
    if key in metrics:
        return metrics[key]
    return metrics.get("mean", {}).get(key)


def _label_key(label: str) -> tuple[int, str]:
    return (int(label), label) if label.lstrip("-").isdigit() else (1 << 30, label)
