"""``digitlab models``: work on saved models (their folders under ``models/``, or any model folder)."""

from __future__ import annotations

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
    progress,
    settings_from,
)

__all__ = ["models_app"]

models_app = typer.Typer(help="Saved models: list, show, remove; rebuild a CNN's int8 graph.", no_args_is_help=True)

#: Test facts shown in the table of ``models requantize``.
_SHOWN = ("accuracy", "errors", "n", "inference", "pytorch_accuracy", "seconds")


@models_app.callback()
def _models() -> None:
    """Saved models: list, show, remove; rebuild a CNN's int8 graph.

    Training under a name again adds a version (models/NAME/v1, v2, ...); NAME
    means the latest, NAME@vN a given one.
    """


@models_app.command("list")
def list_command(home: Path | None = HomeOption, fmt: OutputFormat = FormatOption) -> None:
    """List saved models (and the bundled default): latest version, type, test accuracy, date."""
    from digitlab.models.io import list_models

    entries = list_models(settings_from(home=home).models_dir)
    docs: list[dict[str, Any]] = [{"name": e.name, "version": e.version, "versions": list(e.versions), "path": e.path,
             "model": e.card.model if e.card else None, "test_accuracy": e.card.test_accuracy if e.card else None,
             "created": e.card.created if e.card else None, "run": e.card.run if e.card else None,
             "error": e.error} for e in entries]
    emit(docs, fmt, columns=["name", "latest", "versions", "type", "test accuracy", "created", "run"],
         rows=[(d["name"], f"v{d['version']}" if d["version"] else "bundled", len(d["versions"]) or "",
                d["model"] or f"unreadable: {d['error']}", d["test_accuracy"], d["created"] or "", d["run"] or "")
               for d in docs])


@models_app.command("show")
def show_command(
    model: str = typer.Argument(..., metavar="NAME[@vN]", help="A saved model (its latest version), or a version."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Show a saved model's card: how it was made (command, data, seed, run) and its test metrics."""
    from digitlab.evaluate import summary
    from digitlab.models.card import read_card
    from digitlab.models.io import model_path, model_versions, parse_model_ref

    models_dir = settings_from(home=home).models_dir
    path = model_path(model, models_dir)
    card = read_card(path)
    name, _ = parse_model_ref(model)
    versions = model_versions(name, models_dir)
    version = next((v for v, p in versions.items() if p == path), None)
    doc = {"name": name, "version": version, "versions": list(versions), "path": path, **card.to_dict()}
    train = card.train
    rows: list[tuple[str, object]] = [
        ("name", name + (f"@v{version}" if version else " (bundled)")),
        ("versions", ", ".join(f"v{v}" for v in versions) or "bundled"), ("folder", str(path)),
        ("type", card.model), ("created", card.created), ("run", card.run), ("command", card.command),
        ("seed", card.seed), ("train seconds", card.train_seconds), ("machine", card.machine),
    ]
    if train is not None:
        rows += [("train data", train.dataset + (f" where {train.where}" if train.where else "")),
                 ("train images", train.n), ("train sha256", train.sha256)]
    rows += [(f"param {k}", v) for k, v in card.params.items() if v is not None]
    rows += [(f"test {k}", v) for k, v in summary(card.test_metrics).items()]
    emit(doc, fmt, columns=["", "value"], rows=[(k, v) for k, v in rows if v is not None])


@models_app.command("rm")
def rm_command(
    model: str = typer.Argument(..., metavar="NAME[@vN]", help="A saved model (every version), or one version."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Remove a saved model, or one of its versions. Recorded runs stay (their model link then dangles)."""
    import sys

    from digitlab.errors import UserError
    from digitlab.models.io import model_versions, parse_model_ref, remove_model

    models_dir = settings_from(home=home).models_dir
    name, version = parse_model_ref(model)
    what = (f"version {version} of model {name!r}" if version
            else f"model {name!r} ({len(model_versions(name, models_dir))} version(s))")
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"removing {what} needs --yes when not asked on a terminal")
        typer.confirm(f"Remove {what}?", abort=True)
    removed = remove_model(model, models_dir)
    emit({"removed": removed}, fmt, render=lambda: console.print(f"removed {what}", highlight=False))


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
