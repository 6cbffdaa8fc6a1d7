"""``digitlab novelty``: the not-a-digit detector of a saved model (fit it again after the model changes)."""

from __future__ import annotations

from pathlib import Path

import typer

from digitlab.cli._common import DataDirOption, FormatOption, HomeOption, OutputFormat, emit, progress, settings_from

__all__ = ["novelty_app"]

novelty_app = typer.Typer(help="The not-a-digit detector of a model: fit it, show it.", no_args_is_help=True)


@novelty_app.callback()
def _novelty() -> None:
    """The not-a-digit detector of a model: fit it, show it."""


@novelty_app.command("fit")
def fit(
    model: str = typer.Argument("default", metavar="NAME_OR_FOLDER", help="A saved model's name, or a model folder."),
    pen: Path | None = typer.Option(None, "--pen", help="UNIPEN pen digits (default: pendigits beside the MNIST "
                                                        "folder, ../pendigits/pendigits-orig.tra.gz)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the negatives, the samples and the network."),
    quick: bool = typer.Option(False, "--quick", help="Sets ~20x smaller: a first look in a minute."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Fit and measure, save nothing."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Fit the model's not-a-digit detector and save it in the model's folder (novelty.safetensors + .json)."""
    from digitlab.novelty import fit_novelty

    settings = settings_from(data_dir=data_dir, home=home)
    with progress(fmt is not OutputFormat.json) as bar:
        result = fit_novelty(model, models_dir=settings.models_dir, data_dir=settings.data_dir, pen_file=pen,
                             seed=seed, quick=quick, dry_run=dry_run, progress=bar)
    op = result.detector.card["operating_point"]
    rows = [(f"digits flagged ({k})", v) for k, v in op["false_alarm_by_set"].items()]
    rows += [(f"held-out {k} flagged", v) for k, v in op.get("flagged_by_set", {}).items()]
    emit({"model": result.model, "path": None if dry_run else result.path, "saved": not dry_run,
          "threshold": result.detector.threshold, "operating_point": op}, fmt, columns=["measure", "share"],
         rows=rows, title=f"{result.model}: not-a-digit detector " + ("(dry run, not saved)" if dry_run else
                                                                       f"saved in {result.path}"))


@novelty_app.command("show")
def show(
    model: str = typer.Argument("default", metavar="NAME", help="A saved model's name."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Whether the model can tell a digit from something else, and its measured false-alarm rate."""
    from digitlab.models.io import model_path
    from digitlab.novelty import detector_info

    settings = settings_from(home=home)
    info = detector_info(model_path(model, settings.models_dir), model)
    emit({"model": model, "can_tell": info.can_tell, "false_alarm_rate": info.false_alarm_rate,
          "note": info.reason}, fmt, columns=["model", "can tell", "false-alarm rate", "note"],
         rows=[(model, info.can_tell, info.false_alarm_rate, info.reason or "")])
