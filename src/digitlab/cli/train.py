"""``digitlab train`` and ``digitlab learning-curve``: options to a spec, one workflow call, the result printed."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from digitlab.cli._common import (
    DataDirOption,
    FormatOption,
    HomeOption,
    OutputFormat,
    console,
    emit,
    progress,
    settings_from,
    suggest,
)
from digitlab.errors import UserError

if typing.TYPE_CHECKING:
    from typer._click.core import Context as ClickContext
    from typer._click.formatting import HelpFormatter

__all__ = ["TrainCommand", "collect_params", "learning_curve_command", "model_parameters", "parse_param",
           "train_command"]

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


def collect_params(model: str, sets: list[str], extra: list[str], options: Sequence[str] = ()) -> dict[str, Any]:
    """Model parameters from ``--set key=value`` options and ``--key value`` sugar, typed by their defaults.

    Parameters
    ----------
    options : sequence of str
        The command's own options (``--train-size``, ...): a misspelt one
        (``--train-sise``) lands here as an unknown parameter, and the error
        suggests the nearest of these and of the model's parameters.

    Raises
    ------
    NotFoundError
        Unknown model.
    UserError
        An unknown parameter, a value of the wrong type, or a stray argument.
    """
    from digitlab.models import model_class

    defaults = model_class(model)().get_params()
    spelled = {f"--{k.replace('_', '-')}": k for k in defaults}
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
            near = suggest(f"--{key.replace('_', '-')}", [*options, *spelled])
            hint = ""
            if near is not None:
                what = f" (the parameter {spelled[near]})" if near in spelled else ""
                hint = f" (did you mean {near}{what}?)"
            raise UserError(f"unknown parameter {key!r} for model {model!r}{hint}; valid: {valid}")
        params[key] = parse_param(model, key, value, defaults[key])
    return params


# -------------------------------------------------------------------------------------------------- train


def train_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model to train: centroid, logreg, sgd, svm-linear, svm-rbf, svm-poly, "
                                          "svm-sigmoid, trees, cnn, dpmm."),
    train_size: int | None = typer.Option(None, "--train-size", help="Train on a stratified sample of N images."),
    sets: list[str] = typer.Option([], "--set", help="Model parameter key=value (repeatable); "
                                                     "'--key value' works too (e.g. --recipe default)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the sample and the folds (0 if not given); also "
                                                          "sets the model's random_state/seed param when given."),
    name: str | None = typer.Option(None, "--name", help="Save as this name (default: the model's name)."),
    out: Path | None = typer.Option(None, "--out", help="Save into this folder instead of the models folder."),
    where: str | None = typer.Option(None, "--where", help="SQL condition selecting training rows, e.g. "
                                                           "\"hash(id) % 5 != 0\"."),
    table: str = typer.Option("mnist_train", "--table", help="Training dataset: mnist_train, a store table or a "
                                                             "file/folder."),
    folds: int | None = typer.Option(None, "--folds", help="Run a K-fold experiment instead (nothing saved)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Quick check: 1000 training and 1000 test images, at "
                                                          "most 1 epoch, nothing saved or recorded."),
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", help="Checkpoint folder (models that checkpoint; default: "
                                       "models/.checkpoints/NAME)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint (models that "
                                                        "support it)."),
    init: str | None = typer.Option(None, "--init", help="Fine-tune: start from this saved model (e.g. default, "
                                                         "the bundled CNN) on --table plus MNIST train (cnn)."),
    calibration: float = typer.Option(0.05, "--calibration", help="Fraction of the training images held out "
                                                                  "(stratified) to calibrate the probabilities; 0 "
                                                                  "for none."),
    pen: Path | None = typer.Option(
        None, "--pen", help="Train the CNN for drawings: pen-drawn digits (a UNIPEN file such as "
                            "pendigits-orig.tra.gz) rendered as the page renders strokes, with stroke-style views "
                            "of every image; the temperature is fitted on the calibration writers (docs/cnn.md)."),
    pen_renders: int = typer.Option(4, "--pen-renders", min=3, help="Random renders of each pen digit (--pen)."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Train a model on MNIST train (or --table/--where), test it on MNIST test, save it and record a run."""
    from digitlab.workflows import CrossValidateSpec, TrainSpec, cross_validate, train

    settings = settings_from(data_dir=data_dir, home=home)
    options = [o for p in ctx.command.params for o in p.opts if o.startswith("--")]
    params = collect_params(model, list(sets), list(ctx.args), options)
    show = fmt is not OutputFormat.json
    if folds is not None:
        given = [opt for opt, on in (("--out", out is not None), ("--dry-run", dry_run), ("--resume", resume),
                                     ("--checkpoint-dir", checkpoint_dir is not None), ("--init", init is not None))
                 if on]
        if given:
            raise UserError(f"--folds runs an experiment that saves nothing; it does not take {given[0]}")
        with progress(show) as bar:
            cv = cross_validate(CrossValidateSpec(model=model, folds=folds, params=params, train_size=train_size,
                                                  dataset=table, where=where, seed=seed),
                                settings=settings, progress=bar)
        experiment = {"run": cv.run, "model": model, "params": cv.params, "train_size": cv.n,
                      "folds": list(cv.folds), "mean": cv.mean, "std": cv.std}
        emit(experiment, fmt, title=f"{folds}-fold experiment of {model} on {cv.n} images (run {cv.run})",
             columns=["metric", "mean", "std"], rows=[(k, cv.mean[k], cv.std[k]) for k in cv.mean])
        return

    spec = TrainSpec(model=model, params=params, train_size=train_size, dataset=table, where=where, seed=seed,
                     name=name, out=out, dry_run=dry_run, checkpoint_dir=checkpoint_dir, resume=resume,
                     calibration=calibration, init=init, pen=pen, pen_renders=pen_renders)
    with progress(show) as bar:
        result = train(spec, settings=settings, progress=bar)
    doc: dict[str, Any] = {"run": result.run, "name": result.name, "version": result.version, "model": model,
                           "params": result.estimator.get_params(), "path": result.path,
                           "train_size": result.train_size, "train_sampled": result.sampled,
                           "train_seconds": round(result.train_seconds, 3), "test": result.test_summary,
                           "calibration": dict(result.card.train.calibration) if result.card.train else {}}
    if dry_run:
        doc["dry_run"] = True
    sampled = " (stratified sample)" if result.sampled else ""
    where_saved = ("dry run: nothing saved" if dry_run else f"saved as {result.name}@v{result.version}"
                   if out is None else f"saved in {result.path}")
    emit(doc, fmt, title=f"{model} trained on {result.train_size} images{sampled} in {result.train_seconds:.1f} s, "
                         f"{where_saved}" + (f" (run {result.run})" if result.run else ""),
         columns=["test metric", "value"], rows=list(result.test_summary.items()))


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
    from digitlab.workflows import LearningCurveSpec, learning_curve

    settings = settings_from(data_dir=data_dir, home=home)
    params = collect_params(model, list(sets), [])
    try:
        size_list = tuple(int(s) for s in sizes.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--sizes must be a comma list of integers, got {sizes!r}") from None
    with progress(fmt is not OutputFormat.json) as bar:
        curve = learning_curve(LearningCurveSpec(model=model, sizes=size_list, params=params, seed=seed, plot=plot),
                               settings=settings, progress=bar)
    points = [{"size": p.size, "accuracy": p.accuracy, "fit_seconds": p.fit_seconds,
               "predict_seconds": p.predict_seconds} for p in curve.points]
    emit({"run": curve.run, "model": model, "params": curve.params, "points": points, "plot": curve.plot}, fmt,
         title=f"learning curve of {model} (plot: {curve.plot}, run {curve.run})",
         columns=["size", "accuracy", "fit s", "predict s"],
         rows=[(p.size, p.accuracy, p.fit_seconds, p.predict_seconds) for p in curve.points])


# ------------------------------------------------------------------------------------ per-model help


_PARAM_LINE = re.compile(r"^(\w+)\s*:\s*(.*)$")


def _docstring_params(doc: str) -> dict[str, tuple[str, str]]:
    """``name -> (type, description)`` from the numpydoc ``Parameters`` section of a docstring."""
    lines = doc.splitlines()
    out: dict[str, tuple[str, str]] = {}
    try:
        start = next(i for i, ln in enumerate(lines[:-1]) if ln.strip() == "Parameters"
                     and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        return out
    name: str | None = None
    kind = ""
    text: list[str] = []
    for i in range(start + 2, len(lines)):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"}:
            break  # the next section
        m = _PARAM_LINE.match(line)
        if m and not line.startswith(" "):
            if name:
                out[name] = (kind, " ".join(text))
            name, kind, text = m.group(1), m.group(2).strip(), []
        elif name and line.strip():
            text.append(line.strip())
    if name:
        out[name] = (kind, " ".join(text))
    return out


def model_parameters(model: str) -> list[tuple[str, str, Any, str]]:
    """The parameters of model ``model``: (name, type, default, description), from the estimator itself.

    Defaults are the estimator's ``get_params()``; types and descriptions come
    from its numpydoc ``Parameters`` section, the type from its ``__init__``
    annotation where the docstring has none.
    """
    from digitlab.models import model_class

    cls = model_class(model)
    defaults = cls().get_params()
    docs = _docstring_params(inspect.getdoc(cls) or "")
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not evaluate here: fall back to the docstring
        hints = {}
    rows = []
    for name, default in defaults.items():
        kind, text = docs.get(name, ("", ""))
        kind = re.split(r",\s*default\b", kind)[0].strip() if kind else ""
        if not kind and name in hints:
            kind = str(hints[name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
        rows.append((name, _plain(kind), default, _plain(text)))
    return rows


def _plain(text: str) -> str:
    """Docstring text without its reStructuredText markup (``:meth:`quantize```, ````fit````)."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


class TrainCommand(TyperCommand):
    """``digitlab train``: ``digitlab train MODEL --help`` adds MODEL's parameters to the help."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        from digitlab.models import MODELS

        # --help is answered while the arguments are parsed, before MODEL is known: look for it first
        ctx.meta["digitlab.train_model"] = next((a for a in args if a in MODELS), None)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        model = ctx.meta.get("digitlab.train_model")
        if model:
            from rich.table import Table

            table = Table(title=f"Parameters of {model} (give them as --key value or --set key=value)",
                          title_justify="left", show_lines=False)
            for column in ("parameter", "type", "default", "what"):
                table.add_column(column, overflow="fold")
            for name, kind, default, text in model_parameters(model):
                table.add_row(f"--{name.replace('_', '-')}", kind, repr(default), text)
            console.print(table)
