"""``digitlab models``: work on saved models (their folders under ``models/``, or any model folder)."""

from __future__ import annotations

from pathlib import Path

import typer

from digitlab.cli._common import DataDirOption, FormatOption, HomeOption, OutputFormat, emit, progress, settings_from

__all__ = ["models_app"]

models_app = typer.Typer(help="Saved models: rebuild a CNN's int8 graph.", no_args_is_help=True)

#: Test facts shown in the table of ``models requantize``.
_SHOWN = ("accuracy", "errors", "n", "inference", "pytorch_accuracy", "seconds")


@models_app.callback()
def _models() -> None:
    """Saved models: rebuild a CNN's int8 graph."""


@models_app.command("requantize")
def requantize(
    model: str = typer.Argument(..., metavar="NAME_OR_FOLDER", help="A saved CNN's name, or a model folder."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Add or rebuild the int8 graph of a saved CNN from MNIST training images, re-measure it, save it in place."""
    from digitlab.workflows import RequantizeSpec, requantize

    settings = settings_from(data_dir=data_dir, home=home)
    with progress(fmt is not OutputFormat.json) as bar:
        result = requantize(RequantizeSpec(model=model), settings=settings, progress=bar)
    emit({"model": model, "path": result.path, "test": result.test}, fmt,
         title=f"{model}: int8 graph rebuilt and saved in {result.path}", columns=["test metric", "value"],
         rows=[(k, result.test[k]) for k in _SHOWN if k in result.test])
