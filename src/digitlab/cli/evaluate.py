"""``digitlab evaluate`` and ``digitlab predict``: measure a saved model on a dataset, or read digits from images."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from digitlab.cli._common import (
    DataDirOption,
    FormatOption,
    HomeOption,
    OutputFormat,
    console,
    emit,
    print_table,
    progress,
    settings_from,
)
from digitlab.errors import UserError

__all__ = ["evaluate_command", "predict_command"]


def evaluate_command(
    name: str = typer.Argument(..., help="Saved model: NAME (its latest version), NAME@vN, or 'default' (the "
                                         "bundled CNN); 'digitlab models list' shows them."),
    dataset: str = typer.Option("mnist_test", "--dataset", "--table", help="mnist_test, mnist_train, a store "
                                                                           "table or a file/folder."),
    where: str | None = typer.Option(None, "--where", help="SQL condition selecting test rows."),
    by: str | None = typer.Option(None, "--by", help="Also show the accuracy per value of this column (writer, "
                                                     "label, ...), the worst first; with -f csv only that table."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report with figures into this folder."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Evaluate a saved model: metrics, per-class table, predictions stored as a run; optional HTML report.

    ``--by writer`` (any column of the table) adds the accuracy per group,
    the worst first: in JSON a list under "by", in CSV the only table.
    """
    from digitlab.evaluate import PER_CLASS_KEYS, summary
    from digitlab.workflows import EvaluateSpec, evaluate_saved

    settings = settings_from(data_dir=data_dir, home=home)
    with progress(fmt is not OutputFormat.json) as bar:
        result = evaluate_saved(EvaluateSpec(name=name, dataset=dataset, where=where, report=report, by=by),
                                settings=settings, progress=bar)
    metrics = result.evaluation.metrics
    doc: dict[str, Any] = {"run": result.run, "name": name, "version": result.version, "model": result.card.model,
                           "dataset": dataset,
                           "where": where, "metrics": metrics}
    if result.report is not None:
        doc["report"] = result.report
    groups = [dataclasses.asdict(g) for g in result.by_group or []]
    if by is not None:
        doc["group_by"] = by
        doc["by"] = groups
        if fmt is OutputFormat.csv:
            emit(doc, fmt, columns=[by, "n", "right", "accuracy"],
                 rows=[(g["group"], g["n"], g["right"], g["accuracy"]) for g in groups])
            return

    def render() -> None:
        shown = f"{name}@v{result.version}" if result.version is not None and "@" not in name else name
        print_table(["metric", "value"], [(k, f"{v:.4f}" if isinstance(v, float) else v)
                                          for k, v in summary(metrics).items()],
                    title=f"{shown} on {dataset}" + (f" where {where}" if where else "") + f" (run {result.run})")
        if "per_class" in metrics:
            print_table(["label", *PER_CLASS_KEYS],
                        [(lab, *(f"{row[c]:.4f}" if isinstance(row[c], float) else row[c] for c in PER_CLASS_KEYS))
                         for lab, row in metrics["per_class"].items()], title="per class")
        if by is not None:
            print_table([by, "n", "right", "accuracy"],
                        [(g["group"], g["n"], g["right"], f"{g['accuracy']:.4f}") for g in groups],
                        title=f"accuracy by {by}, the worst first")
        if result.report is not None:
            console.print(f"report: {result.report}", highlight=False, soft_wrap=True)

    emit(doc, fmt, render=render)


def predict_command(
    name: str = typer.Argument(..., help="Saved model: NAME (its latest version), NAME@vN, or 'default' (the "
                                         "bundled CNN)."),
    images: list[Path] | None = typer.Argument(None, help="Image files (any size; dark-on-light or light-on-dark)."),
    input_csv: Path | None = typer.Option(None, "--input", help="An unlabelled CSV of 784 pixel columns, with or "
                                                               "without a header (Kaggle's test.csv; .gz too)."),
    out: Path | None = typer.Option(None, "--out", help="With --input: write ImageId,Label (ImageId from 1), "
                                                        "Kaggle's submission.csv."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Predict the digit in each image file with the class probabilities, or every row of a pixel CSV.

    A picture the model says is not a digit is reported as "that doesn't
    look like a digit" (its best guess stays in the JSON).
    """
    from digitlab.export import load_predictor
    from digitlab.models.io import load_model, model_path
    from digitlab.predict import predict_csv, predict_files

    if input_csv is None and not images:
        raise UserError("give image files, or --input CSV for a file of pixel rows")
    if input_csv is not None and images:
        raise UserError("give either image files or --input CSV, not both")
    if out is not None and input_csv is None:
        raise UserError("--out writes the predictions of --input CSV; give --input too")
    settings = settings_from(home=home)
    from digitlab.novelty import load_with_detector

    folder = model_path(name, settings.models_dir)
    # a model with a current not-a-digit detector answers not_a_digit too (issue 14); else the folder's own ONNX
    # export when it is current (ONNX Runtime alone: no scikit-learn, no torch), else the model
    est = (load_with_detector(folder, name) or load_predictor(folder)
           or load_model(folder, name=name).estimator)
    if input_csv is not None:
        sub = predict_csv(est, input_csv, out)
        if out is None:
            emit({"model": name, "input": input_csv, "predictions": [
                {"ImageId": i, "Label": int(v)} for i, v in enumerate(sub.labels, start=1)]}, fmt,
                columns=["ImageId", "Label"], rows=[(i, int(v)) for i, v in enumerate(sub.labels, start=1)])
            return
        emit({"model": name, "input": input_csv, "out": sub.out, "n": len(sub.labels), "counts": sub.counts,
              "not_a_digit": sub.not_a_digit}, fmt,
             title=f"{len(sub.labels)} rows of {input_csv} predicted by {name}; ImageId,Label written to {sub.out}",
             columns=["digit", "rows"], rows=list(sub.counts.items()))
        return
    assert images is not None
    found = predict_files(est, images)
    results = [{"image": str(path), **p.as_dict()} for path, p in zip(images, found, strict=True)]
    classes = [str(c) for c in est.classes_]
    emit({"model": name, "predictions": results}, fmt,
         columns=["image", "digit", "probability", *classes],
         rows=[(r["image"], _shown_digit(r), r["probability"],
                *((r["probabilities"] or {}).get(c) for c in classes)) for r in results])


#: What ``predict`` prints in place of a digit for a picture the model says is not one.
NOT_A_DIGIT = "that doesn't look like a digit"


def _shown_digit(r: dict[str, Any]) -> object:
    if r["note"] is not None:
        return r["note"]
    if r["not_a_digit"]:
        return f"{NOT_A_DIGIT} (best guess {r['digit']})"
    return r["digit"]
