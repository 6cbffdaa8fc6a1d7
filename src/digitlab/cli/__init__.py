"""The ``digitlab`` command line: a thin shell over the library.

Sub-apps live in their own modules and register here.
"""

from __future__ import annotations

import typer

from digitlab.cli._common import DigitlabGroup
from digitlab.cli.data import data_app
from digitlab.cli.dpmm import dpmm_app
from digitlab.cli.evaluate import evaluate_command, predict_command
from digitlab.cli.explain import explain_command
from digitlab.cli.models import models_app
from digitlab.cli.runs import compare_command, runs_command
from digitlab.cli.score import score_command
from digitlab.cli.serve import serve_command
from digitlab.cli.sql import sql_command
from digitlab.cli.sweep import sweep_command
from digitlab.cli.train import learning_curve_command, train_command

__all__ = ["app", "main"]

app = typer.Typer(
    cls=DigitlabGroup,
    name="digitlab",
    help="Handwritten digit recognition: MNIST in SQL, every model family, explanations and a live drawing app.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from digitlab import __version__

        typer.echo(f"digitlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Handwritten digit recognition: MNIST in SQL, every model family, explanations and a live drawing app."""


app.add_typer(data_app, name="data")
app.add_typer(dpmm_app, name="dpmm")
app.add_typer(models_app, name="models")
app.command("sql")(sql_command)
app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(train_command)
app.command("evaluate")(evaluate_command)
app.command("learning-curve")(learning_curve_command)
app.command("runs")(runs_command)
app.command("compare")(compare_command)
app.command("predict")(predict_command)
app.command("serve")(serve_command)
app.command("explain")(explain_command)
app.command("score")(score_command)
app.command("sweep")(sweep_command)


def main() -> None:
    """Console-script entry point."""
    app()
