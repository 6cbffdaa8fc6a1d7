"""``digitlab read``: the whole number in each picture (digits found left to right, each flagged if not a digit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from digitlab.cli._common import FormatOption, HomeOption, OutputFormat, emit, settings_from

__all__ = ["read_command"]


def read_command(
    images: list[Path] = typer.Argument(..., help="Image files of numbers (any size and aspect ratio)."),
    model: str = typer.Option("default", "--model", "-m", help="Saved model name ('default' = the bundled model)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Read the number in each picture: its digits left to right, each with its box and probabilities."""
    from digitlab.models.io import load_model, model_path
    from digitlab.novelty import load_detector
    from digitlab.read import read_number, recognizer

    settings = settings_from(home=home)
    loaded = load_model(model_path(model, settings.models_dir), name=model)
    recognise = recognizer(loaded.estimator, load_detector(loaded.path, model))
    results: list[dict[str, Any]] = []
    for path in images:
        reading = read_number(path, recognise)
        results.append({"image": str(path), "no_ink": reading.no_ink, "text": reading.text, "digits": [
            {"digit": d.digit, "probabilities": d.probabilities.tolist(), "box": list(d.box),
             "not_a_digit": d.not_a_digit} for d in reading.digits]})
    emit({"model": model, "readings": results}, fmt, columns=["image", "number", "digits", "not a digit"],
         rows=[(r["image"], "no ink" if r["no_ink"] else r["text"], len(r["digits"]),
                ", ".join(f"#{i + 1} ({d['digit']}?)" for i, d in enumerate(r["digits"]) if d["not_a_digit"])
                or "-") for r in results])
