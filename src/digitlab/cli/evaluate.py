"""``digitlab evaluate`` and ``digitlab predict``: measure a saved model on a dataset, or read digits from images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from digitlab.cli._common import (
    DataDirOption,
    FormatOption,
    HomeOption,
    OutputFormat,
    console,
    emit,
    progress,
    settings_from,
)
from digitlab.errors import NoInkError

__all__ = ["evaluate_command", "predict_command"]


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
    from rich.table import Table

    from digitlab.evaluate import PER_CLASS_KEYS, summary
    from digitlab.workflows import EvaluateSpec, evaluate_saved

    settings = settings_from(data_dir=data_dir, home=home)
    with progress(fmt is not OutputFormat.json) as bar:
        result = evaluate_saved(EvaluateSpec(name=name, dataset=dataset, where=where, report=report),
                                settings=settings, progress=bar)
    metrics = result.evaluation.metrics
    doc: dict[str, Any] = {"run": result.run, "name": name, "model": result.card.model, "dataset": dataset,
                           "where": where, "metrics": metrics}
    if result.report is not None:
        doc["report"] = result.report

    def render() -> None:
        t = Table(title=f"{name} on {dataset}" + (f" where {where}" if where else "") + f" (run {result.run})")
        t.add_column("metric")
        t.add_column("value")
        for k, v in summary(metrics).items():
            t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        console.print(t)
        if "per_class" in metrics:
            pc = Table(title="per class")
            for c in ["label", *PER_CLASS_KEYS]:
                pc.add_column(c)
            for lab, row in metrics["per_class"].items():
                pc.add_row(lab, *(f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c])
                                  for c in PER_CLASS_KEYS))
            console.print(pc)
        if result.report is not None:
            console.print(f"report: {result.report}")

    emit(doc, fmt, render=render)


def predict_command(
    name: str = typer.Argument(..., help="Saved model name ('default' = the bundled model)."),
    images: list[Path] = typer.Argument(..., help="Image files (any size; dark-on-light or light-on-dark)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Predict the digit in each image file, with the class probabilities."""
    import digitlab.preprocess as pre
    from digitlab.export import load_predictor
    from digitlab.models.io import load_model, model_path

    settings = settings_from(home=home)
    folder = model_path(name, settings.models_dir)
    # the folder's own ONNX export when it is current (ONNX Runtime alone: no scikit-learn, no torch), else the model
    est = load_predictor(folder) or load_model(folder, name=name).estimator
    results: list[dict[str, Any]] = []
    for path in images:
        try:
            img = pre.load_image(path)
        except NoInkError:
            results.append({"image": str(path), "digit": None, "probability": None, "probabilities": None,
                            "note": "no ink"})
            continue
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
