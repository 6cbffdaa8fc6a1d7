"""``digitlab train / evaluate / learning-curve / runs / compare / predict``: the model workbench."""

from __future__ import annotations

import hashlib
import inspect
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import typer

from digitlab.cli._common import (
    DataDirOption,
    FormatOption,
    HomeOption,
    OutputFormat,
    ProgressFn,
    emit,
    progress,
    settings_from,
)
from digitlab.data.select import load_dataset, stratified_sample
from digitlab.errors import UserError

__all__ = ["compare_command", "evaluate_command", "learning_curve_command", "parse_param", "predict_command",
           "runs_command", "train_command"]

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# ------------------------------------------------------------------------------------------------- params


def parse_param(model: str, key: str, raw: str, default: Any) -> Any:
    """Parse a ``--set key=value`` string to the type of the parameter's default.

    bool accepts true/false/yes/no/1/0; a tuple default takes a comma list of
    ints; a ``None`` default tries int, then float, else keeps the string.

    Raises
    ------
    UserError
        The value does not parse as that type.
    """
    try:
        if isinstance(default, bool):
            low = raw.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(int(v) for v in raw.split(",") if v.strip())
        if default is None:
            for conv in (int, float):
                try:
                    return conv(raw)
                except ValueError:
                    pass
        return raw
    except ValueError:
        kind = "a comma list of integers" if isinstance(default, tuple) else type(default).__name__
        raise UserError(f"bad value for {model} parameter {key!r}: expected {kind}, got {raw!r}") from None


def _collect_params(model: str, sets: list[str], extra: list[str], seed: int | None) -> dict[str, Any]:
    from digitlab.models import model_class

    defaults = model_class(model)().get_params()
    valid = ", ".join(sorted(defaults))
    pairs: list[tuple[str, str]] = []
    for item in sets:
        if "=" not in item:
            raise UserError(f"--set takes key=value, got {item!r}")
        k, v = item.split("=", 1)
        pairs.append((k.strip().replace("-", "_"), v))
    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or len(tok) < 3:
            raise UserError(f"unexpected argument {tok!r}; model parameters go as --set key=value or --key value")
        name, eq, value = tok[2:].partition("=")
        if not eq:
            if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                value = extra[i + 1]
                i += 1
            else:
                value = "true"
        pairs.append((name.replace("-", "_"), value))
        i += 1
    params: dict[str, Any] = {}
    for key, value in pairs:
        if key not in defaults:
            raise UserError(f"unknown parameter {key!r} for model {model!r}; valid: {valid}")
        params[key] = parse_param(model, key, value, defaults[key])
    if seed is not None:
        for key in ("random_state", "seed"):
            if key in defaults and key not in params:
                params[key] = seed
    return params


def _fit(est: Any, model: str, X: np.ndarray, y: np.ndarray, bar: ProgressFn, checkpoint_dir: Path | None,
         resume: bool) -> float:
    sig = inspect.signature(est.fit).parameters
    kw: dict[str, Any] = {}
    if "progress" in sig:
        kw["progress"] = bar
    if "checkpoint_dir" in sig and checkpoint_dir is not None:
        kw["checkpoint_dir"] = checkpoint_dir
    if resume:
        if "resume" not in sig:
            raise UserError(f"model {model!r} does not support --resume")
        kw["resume"] = True
    start = time.perf_counter()
    if "progress" not in sig:
        bar("train", 0, 1)
    try:
        est.fit(X, y, **kw)
    except ValueError as exc:
        raise UserError(f"cannot train {model!r}: {exc}") from None
    if "progress" not in sig:
        bar("train", 1, 1)
    return time.perf_counter() - start


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("accuracy", "f1_weighted", "precision", "recall", "f1", "mean_proba_true", "mean_proba_rest", "n")
    return {k: metrics[k] for k in keys if k in metrics}


# -------------------------------------------------------------------------------------------------- train


def train_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model to train: centroid, logreg, sgd, svm-linear, svm-rbf, svm-poly, "
                                          "svm-sigmoid, trees, ..."),
    train_size: int | None = typer.Option(None, "--train-size", help="Train on a stratified sample of N images."),
    sets: list[str] = typer.Option([], "--set", help="Model parameter key=value (repeatable); "
                                                     "'--key value' works too."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the sample and the folds (0 if not given); also "
                                                          "sets the model's random_state/seed param when given."),
    name: str | None = typer.Option(None, "--name", help="Save as this name (default: the model's name)."),
    where: str | None = typer.Option(None, "--where", help="SQL condition selecting training rows, e.g. "
                                                           "\"hash(id) % 5 != 0\"."),
    table: str = typer.Option("mnist_train", "--table", help="Training dataset: mnist_train, a store table or a "
                                                             "file/folder."),
    folds: int | None = typer.Option(None, "--folds", help="Run a K-fold experiment instead (nothing saved)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint (models that "
                                                        "support it)."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Train a model on MNIST train (or --table/--where), test it on MNIST test, save it and record a run."""
    import digitlab
    from digitlab.evaluate import evaluate
    from digitlab.models import make_model, model_class
    from digitlab.models.io import save_model
    from digitlab.runs import new_run_id, record_run
    from digitlab.store import Store

    settings = settings_from(data_dir=data_dir, home=home)
    model_class(model)  # unknown model -> NotFoundError before any work
    params = _collect_params(model, list(sets), list(ctx.args), seed)
    est = make_model(model, **params)
    name = name or model
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(f"--name must be a plain name without slashes, got {name!r}")
    if folds is not None and folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    images, labels, ids = load_dataset(settings, table, where)
    sample_seed = 0 if seed is None else seed
    if train_size is not None:
        keep = stratified_sample(labels, train_size, sample_seed)
        images, labels, ids = images[keep], labels[keep], ids[keep]
    X = images.reshape(len(images), -1)
    store = Store(settings.store_path)
    show = fmt is not OutputFormat.json

    if folds is not None:
        result = _cross_validate(est, model, X, labels, folds, sample_seed, show)
        run = record_run(store, run=new_run_id("cv"), kind="cv", model_name=None, model_type=model,
                         params=est.get_params(), dataset=table, where=where,
                         train_seconds=result["mean"].get("train_seconds"), accuracy=result["mean"]["accuracy"],
                         metrics=result)
        out = {"run": run, "model": model, "params": est.get_params(), "folds": folds, "train_size": len(labels),
               **result}
        emit(out, fmt, title=f"{folds}-fold experiment of {model} on {len(labels)} images (run {run})",
             columns=["metric", "mean", "std"], rows=[(k, result["mean"][k], result["std"][k]) for k in result["mean"]])
        return

    with progress(show) as bar:
        seconds = _fit(est, model, X, labels, bar, settings.models_dir / ".checkpoints" / name, resume)
        test_x, test_y, test_ids = load_dataset(settings, "mnist_test", None)
        ev = evaluate(est, test_x, test_y, test_ids, progress=bar)
    run = new_run_id("train")
    counts = {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True), strict=True)}
    card = {
        "train_sha256": hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()
                                       + labels.astype(np.int64).tobytes()).hexdigest(),
        "train_size": len(labels),
        "train_sampled": train_size is not None,
        "train_class_counts": counts,
        "dataset": table,
        "where": where,
        "seed": sample_seed,
        "train_seconds": round(seconds, 3),
        "test_metrics": ev.metrics,
        "run": run,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "digitlab_version": digitlab.__version__,
    }
    path = save_model(est, settings.models_dir / name, card)
    record_run(store, run=run, kind="train", model_name=name, model_type=model, params=est.get_params(),
               dataset=table, where=where, train_seconds=seconds, accuracy=ev.metrics["accuracy"],
               metrics=ev.metrics, ids=ev.ids, actual=ev.actual, predicted=ev.predicted, probability=ev.probability)
    out = {"run": run, "name": name, "model": model, "params": est.get_params(), "path": path,
           "train_size": len(labels), "train_sampled": train_size is not None, "train_seconds": round(seconds, 3),
           "test": _summary(ev.metrics)}
    sampled = " (stratified sample)" if train_size is not None else ""
    emit(out, fmt, title=f"{model} trained on {len(labels)} images{sampled} in {seconds:.1f} s, saved as {name!r} "
                         f"(run {run})",
         columns=["test metric", "value"], rows=list(_summary(ev.metrics).items()))


def _cross_validate(est: Any, model: str, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                    show: bool) -> dict[str, Any]:
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from digitlab.evaluate import evaluate

    _, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise UserError(f"--folds {folds} needs at least {folds} images of every label; the rarest has "
                        f"{counts.min()}")
    per_fold = []
    with progress(show) as bar:
        for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)):
            bar("folds", f, folds)
            m = clone(est)
            seconds = _fit(m, model, X[tr], y[tr], lambda *a, **k: None, None, False)
            ev = evaluate(m, X[te].reshape(-1, 28, 28) if X.shape[1] == 784 else X[te], y[te])
            per_fold.append({**_summary(ev.metrics), "train_seconds": seconds})
            bar("folds", f + 1, folds)
    keys = [k for k in per_fold[0] if k != "n"]
    return {"folds": per_fold,
            "mean": {k: float(np.mean([p[k] for p in per_fold])) for k in keys},
            "std": {k: float(np.std([p[k] for p in per_fold])) for k in keys}}


# ----------------------------------------------------------------------------------------------- evaluate


def evaluate_command(
    name: str = typer.Argument(..., help="Saved model name (see 'digitlab runs'; 'default' = the bundled model)."),
    dataset: str = typer.Option("mnist_test", "--dataset", help="mnist_test, mnist_train, a store table or a "
                                                                "file/folder."),
    where: str | None = typer.Option(None, "--where", help="SQL condition selecting test rows."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report with figures into this folder."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Evaluate a saved model: metrics, per-class table, predictions stored as a run; optional HTML report."""
    from digitlab.evaluate import evaluate, write_report
    from digitlab.models.io import load_model, model_path
    from digitlab.runs import new_run_id, record_run
    from digitlab.store import Store

    settings = settings_from(data_dir=data_dir, home=home)
    loaded = load_model(model_path(name, settings.models_dir), name=name)
    images, labels, ids = load_dataset(settings, dataset, where)
    with progress(fmt is not OutputFormat.json) as bar:
        ev = evaluate(loaded.estimator, images, labels, ids, progress=bar)
    run = record_run(Store(settings.store_path), run=new_run_id("evaluate"), kind="evaluate", model_name=name,
                     model_type=loaded.card.get("model"), params=loaded.card.get("params", {}), dataset=dataset,
                     where=where, train_seconds=loaded.card.get("train_seconds"), accuracy=ev.metrics["accuracy"],
                     metrics=ev.metrics, ids=ev.ids, actual=ev.actual, predicted=ev.predicted,
                     probability=ev.probability)
    out: dict[str, Any] = {"run": run, "name": name, "model": loaded.card.get("model"), "dataset": dataset,
                           "where": where, "metrics": ev.metrics}
    if report is not None:
        out["report"] = write_report(report, ev, title=f"{name} on {dataset}", est=loaded.estimator,
                                     train_counts=loaded.card.get("train_class_counts"),
                                     info={"model": name, "type": loaded.card.get("model"), "dataset": dataset,
                                           "where": where or "", "run": run})

    def render() -> None:
        from rich.table import Table

        from digitlab.cli._common import console
        t = Table(title=f"{name} on {dataset}" + (f" where {where}" if where else "") + f" (run {run})")
        t.add_column("metric")
        t.add_column("value")
        for k, v in _summary(ev.metrics).items():
            t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        console.print(t)
        if "per_class" in ev.metrics:
            cols = ["accuracy", "precision", "recall", "f1", "support", "proba_pos", "proba_neg"]
            pc = Table(title="per class")
            for c in ["label", *cols]:
                pc.add_column(c)
            for lab, row in ev.metrics["per_class"].items():
                pc.add_row(lab, *(f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in cols))
            console.print(pc)
        if "report" in out:
            console.print(f"report: {out['report']}")

    emit(out, fmt, render=render)


# ----------------------------------------------------------------------------------------- learning curve


def learning_curve_command(
    model: str = typer.Argument(..., help="Model to train at each size."),
    sizes: str = typer.Option("100,500,1000,5000,20000,60000", "--sizes", help="Comma list of training sizes."),
    sets: list[str] = typer.Option([], "--set", help="Model parameter key=value (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the samples and the model's random_state."),
    plot: Path = typer.Option(Path("learning-curve.png"), "--plot", help="Where to write the PNG plot."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Test accuracy and fit time against training-set size (stratified samples of MNIST train)."""
    from digitlab.evaluate import evaluate
    from digitlab.models import make_model, model_class

    settings = settings_from(data_dir=data_dir, home=home)
    model_class(model)
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes must be a comma list of integers, got {sizes!r}") from None
    if not size_list or min(size_list) <= 0:
        raise UserError(f"--sizes must be positive integers, got {sizes!r}")
    params = _collect_params(model, list(sets), [], seed)
    images, labels, _ = load_dataset(settings, "mnist_train", None)
    test_x, test_y, test_ids = load_dataset(settings, "mnist_test", None)
    points = []
    with progress(fmt is not OutputFormat.json) as bar:
        for i, size in enumerate(size_list):
            bar("sizes", i, len(size_list), size=size)
            keep = stratified_sample(labels, size, seed)
            est = make_model(model, **params)
            seconds = _fit(est, model, images[keep].reshape(len(keep), -1), labels[keep], lambda *a, **k: None,
                           None, False)
            start = time.perf_counter()
            ev = evaluate(est, test_x, test_y, test_ids)
            points.append({"size": len(keep), "accuracy": ev.metrics["accuracy"], "fit_seconds": seconds,
                           "predict_seconds": time.perf_counter() - start})
            bar("sizes", i + 1, len(size_list), size=size)
    _plot_curve(plot, model, points)
    emit({"model": model, "params": params, "points": points, "plot": plot}, fmt,
         title=f"learning curve of {model} (plot: {plot})", columns=["size", "accuracy", "fit s", "predict s"],
         rows=[(p["size"], p["accuracy"], p["fit_seconds"], p["predict_seconds"]) for p in points])


def _plot_curve(path: Path, model: str, points: list[dict[str, Any]]) -> None:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from digitlab._io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [p["size"] for p in points]
    ax.plot(xs, [p["accuracy"] for p in points], "o-", color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(xs, [p["fit_seconds"] for p in points], "s--", color="tab:orange")
    ax2.set_ylabel("fit seconds", color="tab:orange")
    ax.set_title(f"learning curve: {model}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ------------------------------------------------------------------------------------------ runs, compare


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
         rows=[(r.run, r.kind, r.model_name, r.model_type, _short_params(r.params), r.dataset
                + (f" where {r.where_clause}" if r.where_clause else ""), r.accuracy, r.train_seconds,
                f"{r.created:%Y-%m-%d %H:%M}") for r in runs])


def _short_params(params: dict[str, Any], width: int = 60) -> str:
    text = " ".join(f"{k}={v}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def compare_command(
    runs: list[str] = typer.Argument(..., help="Two or more run ids (unique prefixes work)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Put runs side by side: overall metrics, then recall and F1 per class."""
    from digitlab.runs import get_run
    from digitlab.store import Store

    store = Store(settings_from(home=home).store_path)
    found = [get_run(store, r) for r in runs]
    metric_rows: list[tuple[Any, ...]] = []
    top = ["accuracy", "f1_weighted", "precision", "recall", "f1", "mean_proba_true", "mean_proba_rest", "n"]
    for key in top:
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


def _metric(metrics: dict[str, Any], key: str) -> Any:
    if key in metrics:
        return metrics[key]
    return metrics.get("mean", {}).get(key)


def _label_key(label: str) -> tuple[int, str]:
    return (int(label), label) if label.lstrip("-").isdigit() else (1 << 30, label)


# -------------------------------------------------------------------------------------------------- predict


def predict_command(
    name: str = typer.Argument(..., help="Saved model name ('default' = the bundled model)."),
    images: list[Path] = typer.Argument(..., help="Image files (any size; dark-on-light or light-on-dark)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Predict the digit in each image file, with the class probabilities."""
    import digitlab.preprocess as pre
    from digitlab.models.io import load_model, model_path

    settings = settings_from(home=home)
    loaded = load_model(model_path(name, settings.models_dir), name=name)
    est = loaded.estimator
    no_ink = getattr(pre, "NoInkError", None)
    results: list[dict[str, Any]] = []
    for path in images:
        try:
            img = pre.load_image(path)
        except UserError as exc:
            if no_ink is not None and isinstance(exc, no_ink):
                results.append({"image": str(path), "digit": None, "probability": None, "probabilities": None,
                                "note": "no ink"})
                continue
            raise
        proba = np.asarray(est.predict_proba(img.reshape(1, -1)))[0]
        k = int(np.argmax(proba))
        results.append({"image": str(path), "digit": est.classes_[k].item(), "probability": float(proba[k]),
                        "probabilities": {str(c): float(p) for c, p in zip(est.classes_, proba, strict=True)},
                        "note": None})
    classes = [str(c) for c in est.classes_]
    emit({"model": name, "predictions": results}, fmt,
         columns=["image", "digit", "probability", *classes],
         rows=[(r["image"], r["digit"] if r["note"] is None else r["note"], r["probability"],
                *((r["probabilities"] or {}).get(c) for c in classes)) for r in results])
