"""The ``digitlab`` command line: a thin shell over the library.

Sub-apps live in their own modules and register here, in the order of the
workflow (data, train, evaluate, serve), which is the order ``digitlab --help``
shows them in. Every command's examples are in :data:`EXAMPLES`, shown at the
end of its help.
"""

from __future__ import annotations

import sys

import typer

from digitlab.cli._common import DigitlabGroup, quiet_broken_pipe
from digitlab.cli.data import data_app
from digitlab.cli.dpmm import dpmm_app
from digitlab.cli.evaluate import evaluate_command, predict_command
from digitlab.cli.explain import explain_command
from digitlab.cli.export import export_command
from digitlab.cli.export_page import export_page_command
from digitlab.cli.models import models_app
from digitlab.cli.novelty import novelty_app
from digitlab.cli.read import read_command
from digitlab.cli.runs import compare_command, runs_app
from digitlab.cli.score import score_command
from digitlab.cli.serve import serve_command
from digitlab.cli.show import show_command
from digitlab.cli.sql import sql_command
from digitlab.cli.sweep import sweep_command
from digitlab.cli.train import TrainCommand, learning_curve_command, train_command

__all__ = ["EXAMPLES", "app", "main"]

_HELP = """Handwritten digit recognition: MNIST in SQL, every model family, explanations and a live drawing app.

The workflow, in order:

1. data      digitlab data fetch; digitlab data import mnist; digitlab show mnist_test 0
2. train     digitlab train logreg   (a model version, its card and a run are saved)
3. evaluate  digitlab evaluate logreg --report out/; digitlab runs; digitlab compare ID ID
4. serve     digitlab serve --model logreg   (MLPaint in the browser, and the REST API);
             digitlab export-page --out site/   (MLPaint as a static site, no server)

Every command takes --format json (one JSON document) or csv; 'digitlab COMMAND --help' shows its examples."""

#: Examples shown at the end of each command's help, by command path.
EXAMPLES: dict[str, list[str]] = {
    "data": ["digitlab data fetch", "digitlab data import mnist"],
    "data fetch": ["digitlab data fetch", "digitlab data fetch --from /path/to/mnist-files"],
    "data info": ["digitlab data info", "digitlab data info --format csv"],
    "data import": ["digitlab data import mnist", "digitlab data import digits.csv --name mine"],
    "data explore": ["digitlab data explore --out figures/", "digitlab data explore --table mine --out figures/"],
    "data export": ["digitlab data export drawings --out my-drawings/   (MLPaint's corrections, one folder per "
                    "label)", 'digitlab data export mnist_test --out test-images/ --where "label = 7"'],
    "sql": ['digitlab sql "SELECT label, count(*) AS n FROM mnist_train GROUP BY label ORDER BY label"',
            'digitlab sql "SELECT id, label FROM mnist_test LIMIT 5" --format csv'],
    "show": ["digitlab show mnist_test 0", "digitlab show mnist_train 7 --out seven.png --scale 10"],
    "train": ["digitlab train logreg --train-size 5000 --seed 1",
              "digitlab train cnn --table drawings --init default   (fine-tune the bundled CNN on the "
              "corrections and MNIST)",
              "digitlab train cnn --help   (lists the CNN's parameters)"],
    "learning-curve": ["digitlab learning-curve centroid --sizes 100,1000,10000 --plot lc.png"],
    "dpmm": ["digitlab dpmm fit --digits 2,3", "digitlab dpmm clusters dpmm --out clusters.png"],
    "dpmm fit": ["digitlab dpmm fit --digits 2,3 --chains 5 --iters 5 --seed 0"],
    "dpmm clusters": ["digitlab dpmm clusters dpmm --out clusters.png --scale-by-size"],
    "dpmm complete": ["digitlab dpmm complete dpmm --keep top --out completions.png",
                      "digitlab dpmm complete dpmm --keep left --format json"],
    "evaluate": ["digitlab evaluate logreg --report out/logreg",
                 'digitlab evaluate logreg@v1 --where "label IN (4, 9)" --format csv'],
    "predict": ["digitlab predict default my-seven.png", "digitlab predict default --input test.csv --out "
                                                         "submission.csv   (Kaggle)"],
    "explain": ["digitlab explain default my-seven.png --out why.png",
                "digitlab explain default --table mnist_test --id 0 --digit 1 --out why1.png"],
    "runs": ["digitlab runs", "digitlab runs export --mlflow mlruns/"],
    "runs list": ["digitlab runs list --model logreg"],
    "runs export": ["digitlab runs export --mlflow mlruns/",
                    "MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri mlruns/"],
    "compare": ["digitlab compare 3fa2 91bc   (short ids from 'digitlab runs')",
                "digitlab compare latest latest~1 --plot compare.png   (the newest run and the one before)"],
    "score": ["digitlab score default digits.parquet --out scored/",
              "digitlab score default 'scans/*.png' --out scored/ --engine ray   (Ray Data)"],
    "sweep": ["digitlab sweep logreg --grid C=0.1,1 --grid max_iter=50,100 --folds 3",
              "digitlab sweep cnn --grid lr=0.001,0.003 --where 'id % 10 = 0' --engine ray --save best-cnn"],
    "models": ["digitlab models list", "digitlab models show logreg@v1"],
    "models list": ["digitlab models list", "digitlab models list --format json"],
    "models show": ["digitlab models show logreg", "digitlab models show logreg@v1"],
    "models rm": ["digitlab models rm logreg@v1", "digitlab models rm logreg --yes"],
    "models requantize": ["digitlab models requantize default", "digitlab models requantize path/to/model"],
    "read": ["digitlab read my-number.png", "digitlab read --model default scan1.png scan2.png --format json"],
    "novelty": ["digitlab novelty fit default", "digitlab novelty show default"],
    "novelty fit": ["digitlab novelty fit default   (after the bundled model changes)",
                    "digitlab novelty fit logreg --quick --dry-run"],
    "novelty show": ["digitlab novelty show default", "digitlab novelty show logreg --format json"],
    "serve": ["digitlab serve", "digitlab serve --model logreg --port 8080 --no-browser",
              "digitlab serve --model default --model logreg   (compare them side by side; --all: every model)"],
    "export-page": ["digitlab export-page --out site/",
                    "python -m http.server -d site/ 8080   (any static host serves it)"],
    "export": ["digitlab export default --format onnx --out digit.onnx",
               "digitlab export logreg --out logreg.onnx --layout image   (input [N, 1, 28, 28])"],
}


def _epilog(path: str) -> str:
    return "Examples:\n\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])


app = typer.Typer(
    cls=DigitlabGroup,
    name="digitlab",
    help=_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        from digitlab import __version__

        typer.echo(f"digitlab {__version__}")
        raise typer.Exit()


@app.callback(help=_HELP)
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    pass


_DATA, _TRAIN, _EVALUATE, _SERVE = "1. Data", "2. Train", "3. Evaluate and explain", "4. Serve"
app.add_typer(data_app, name="data", rich_help_panel=_DATA, epilog=_epilog("data"))
app.command("sql", rich_help_panel=_DATA, epilog=_epilog("sql"))(sql_command)
app.command("show", rich_help_panel=_DATA, epilog=_epilog("show"))(show_command)
app.command("train", cls=TrainCommand, rich_help_panel=_TRAIN, epilog=_epilog("train"),
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(train_command)
app.command("learning-curve", rich_help_panel=_TRAIN, epilog=_epilog("learning-curve"))(learning_curve_command)
app.command("sweep", rich_help_panel=_TRAIN, epilog=_epilog("sweep"))(sweep_command)
app.add_typer(dpmm_app, name="dpmm", rich_help_panel=_TRAIN, epilog=_epilog("dpmm"))
app.command("evaluate", rich_help_panel=_EVALUATE, epilog=_epilog("evaluate"))(evaluate_command)
app.add_typer(runs_app, name="runs", rich_help_panel=_EVALUATE, epilog=_epilog("runs"))
app.command("compare", rich_help_panel=_EVALUATE, epilog=_epilog("compare"))(compare_command)
app.add_typer(models_app, name="models", rich_help_panel=_EVALUATE, epilog=_epilog("models"))
app.command("predict", rich_help_panel=_EVALUATE, epilog=_epilog("predict"))(predict_command)
app.command("explain", rich_help_panel=_EVALUATE, epilog=_epilog("explain"))(explain_command)
app.command("score", rich_help_panel=_EVALUATE, epilog=_epilog("score"))(score_command)
app.command("read", rich_help_panel=_EVALUATE, epilog=_epilog("read"))(read_command)
app.add_typer(novelty_app, name="novelty", rich_help_panel=_EVALUATE, epilog=_epilog("novelty"))
app.command("serve", rich_help_panel=_SERVE, epilog=_epilog("serve"))(serve_command)
app.command("export-page", rich_help_panel=_SERVE, epilog=_epilog("export-page"))(export_page_command)
app.command("export", rich_help_panel=_SERVE, epilog=_epilog("export"))(export_command)

for _group, _sub in (("data", data_app), ("dpmm", dpmm_app), ("runs", runs_app), ("models", models_app),
                     ("novelty", novelty_app)):
    for _info in _sub.registered_commands:  # the sub-apps' commands get their examples here, in one table
        _path = f"{_group} {_info.name}"
        if _path in EXAMPLES and not _info.epilog:
            _info.epilog = _epilog(_path)


def main() -> None:
    """Console-script entry point.

    When the reader of the output goes away (``digitlab sql ... -f csv | head -1``)
    the last flush fails too: the command still ends quietly, with its own exit code.
    """
    try:
        app()
    except SystemExit:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            quiet_broken_pipe()
        raise
