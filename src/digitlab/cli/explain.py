"""``digitlab explain NAME IMAGE``: which pixels push a model towards (green) or away from (red) a digit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

from digitlab.cli._common import DataDirOption, FormatOption, HomeOption, OutputFormat, console, emit, settings_from
from digitlab.errors import UserError

__all__ = ["explain_command"]


def explain_command(
    name: str = typer.Argument(..., help="Model name, NAME@vN for a version ('default' is the bundled CNN)."),
    image: Path | None = typer.Argument(None, help="Image file (PNG, JPEG, ...); normalised like MNIST first. "
                                                   "Or give --table and --id."),
    digit: int | None = typer.Option(None, "--digit", "-d", help="Digit to explain.",
                                     show_default="the predicted digit"),
    out: Path = typer.Option(..., "--out", "-o", help="PNG to write: green for, red against, over the digit."),
    table: str | None = typer.Option(None, "--table", help="Explain a stored digit of this dataset (mnist_train, "
                                                          "mnist_test or a store table) ..."),
    row_id: int | None = typer.Option(None, "--id", help="... the row with this id ('digitlab show TABLE ID' "
                                                         "prints it)."),
    seed: int = typer.Option(0, help="Seed for numpy and torch (every method used here is deterministic)."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Explain model NAME's score for a digit on IMAGE (or a stored row) as a per-pixel map, drawn to --out."""
    from digitlab.explain import explain
    from digitlab.figures import render_explanation
    from digitlab.models.io import load_model, model_path
    from digitlab.preprocess import load_image

    if out.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, got {str(out)!r}")
    if (table is None) != (row_id is None):
        raise UserError("--table and --id go together: the dataset and the row to explain")
    if (image is None) == (table is None):
        raise UserError("give an IMAGE file, or --table T --id N for a stored digit (not both)")
    settings = settings_from(home=home)
    loaded = load_model(model_path(name, settings.models_dir), name=name)
    np.random.seed(seed)
    if "torch" in sys.modules:  # a torch model was loaded
        sys.modules["torch"].manual_seed(seed)
    est = loaded.estimator
    label = None
    if image is not None:
        pixels = load_image(image)                               # (28, 28) uint8
    else:
        from digitlab.cli.show import load_row

        assert table is not None and row_id is not None
        pixels, label = load_row(table, row_id, data_dir, home)  # stored as MNIST: no normalising
    x = pixels.reshape(1, 784).astype(np.float32)
    proba = np.asarray(est.predict_proba(x))[0]
    classes = np.asarray(est.classes_)
    predicted = int(classes[int(np.argmax(proba))])
    exp = explain(est, pixels, digit)
    render_explanation(exp, pixels, out)
    c = exp.contributions
    result = {
        "model": name,
        "image": str(image) if image is not None else None,
        "table": table,
        "id": row_id,
        "label": label,
        "predicted": predicted,
        "probabilities": {int(k): float(p) for k, p in zip(classes, proba, strict=True)},
        "digit": exp.digit,
        "method": exp.method,
        "sum": float(c.sum()),
        "positive": float(c[c > 0].sum()),
        "negative": float(c[c < 0].sum()),
        "out": str(out),
        "contributions": np.round(c, 6).tolist(),
    }
    if fmt is OutputFormat.json:
        emit(result, fmt)
        return
    rows: list[tuple[str, object]] = [
        ("model", name), *([("row", f"{table} id {row_id}, label {label}")] if table else []),
        ("predicted", f"{predicted} (p={proba.max():.3f})"), ("explained digit", exp.digit),
        ("method", exp.method), ("sum of contributions", f"{result['sum']:.4g}"),
        ("positive / negative", f"{result['positive']:.4g} / {result['negative']:.4g}"), ("written", str(out))]
    emit(result, fmt, columns=["", "value"], rows=rows)
    if fmt is OutputFormat.table:
        console.print(f"[green]green[/green] pixels push towards {exp.digit}, [red]red[/red] ones away.")
