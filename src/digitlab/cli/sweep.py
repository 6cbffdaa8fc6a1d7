"""``digitlab sweep``: train every combination of a parameter grid, validate each, record each as a run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from digitlab.cli._common import DataDirOption, FormatOption, HomeOption, OutputFormat, emit, progress, settings_from
from digitlab.errors import UserError

__all__ = ["parse_grid", "sweep_command"]

_RANGE = re.compile(r"^\s*(uniform|loguniform|randint)\(\s*([^,()]+)\s*,\s*([^,()]+)\s*\)\s*$")


def parse_grid(model: str, items: list[str]) -> dict[str, Any]:
    """``--grid key=v1,v2`` options to a space: each value typed by the parameter's default.

    ``key=uniform(a,b)``, ``loguniform(a,b)`` and ``randint(a,b)`` are ranges (random search only); a parameter
    whose values are themselves lists (``digits``) separates its values with ``;``.

    Raises
    ------
    UserError
        Not key=values, an unknown parameter, a value of the wrong type, a key given twice.
    """
    from digitlab.cli.train import parse_param
    from digitlab.models import model_class
    from digitlab.sweep import Choice, Uniform

    defaults = model_class(model)().get_params()
    space: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key or not raw.strip():
            raise UserError(f"--grid takes key=v1,v2,..., got {item!r}")
        if key not in defaults:
            raise UserError(f"unknown parameter {key!r} for model {model!r}; valid: {', '.join(sorted(defaults))}")
        if key in space:
            raise UserError(f"--grid {key} is given twice; list its values in one --grid")
        found = _RANGE.match(raw)
        if found:
            kind, low, high = found.groups()
            try:
                lo, hi = float(low), float(high)
            except ValueError:
                raise UserError(f"--grid {key}: {kind}(low, high) takes two numbers, got {raw!r}") from None
            space[key] = Uniform(lo, hi, log=kind == "loguniform", integer=kind == "randint")
            continue
        sep = ";" if isinstance(defaults[key], tuple) else ","
        values = [v for v in raw.split(sep) if v.strip()]
        space[key] = Choice(tuple(parse_param(model, key, v.strip(), defaults[key]) for v in values))
    return space


def sweep_command(
    model: str = typer.Argument(..., help="Model to sweep: logreg, svm-rbf, trees, cnn, ..."),
    grid: list[str] = typer.Option([], "--grid", help="A swept parameter: key=v1,v2,... (repeatable; for --search "
                                                      "random also key=uniform(a,b), loguniform(a,b), "
                                                      "randint(a,b))."),
    sets: list[str] = typer.Option([], "--set", help="A fixed model parameter key=value (repeatable)."),
    search: str = typer.Option("grid", "--search", help="grid (every combination) or random (--trials draws)."),
    trials: int | None = typer.Option(None, "--trials", help="Random search: how many trials (default 10)."),
    folds: int | None = typer.Option(None, "--folds", help="Validate by K-fold cross-validation (default 3)."),
    where: str | None = typer.Option(None, "--where", help="Validate instead on the training rows matching this SQL "
                                                           "condition, training on the others, e.g. "
                                                           "\"hash(id) % 5 = 0\"."),
    table: str = typer.Option("mnist_train", "--table", help="Training rows: mnist_train, a store table or a file."),
    train_size: int | None = typer.Option(None, "--train-size", help="A stratified sample of N training rows."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample, folds, random draws and models."),
    engine: str = typer.Option("local", "--engine", help="local (this machine's cores) or ray (Ray Tune)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to join ('auto'; default $RAY_ADDRESS, "
                                                               "else a local Ray)."),
    workers: int | None = typer.Option(None, "--workers", help="Trials at once (default: every core/CPU)."),
    save: str | None = typer.Option(None, "--save", help="Retrain the best trial on every training row, test it on "
                                                         "MNIST test and save it under this name."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Quick check: 2 trials on 1000 images, 1 epoch, nothing "
                                                          "recorded or saved."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Train every combination of the --grid parameters, validate each (never on MNIST test), record each as a
    run; the best come first, and 'digitlab compare' puts them side by side."""
    from digitlab.cli.train import collect_params
    from digitlab.sweep import SweepSpec, sweep

    settings = settings_from(data_dir=data_dir, home=home)
    spec = SweepSpec(model=model, space=parse_grid(model, list(grid)), params=collect_params(model, list(sets), []),
                     search=search, trials=trials, folds=folds, where=where, dataset=table, train_size=train_size,
                     seed=seed, engine=engine, address=address, workers=workers, save=save, dry_run=dry_run)
    with progress(fmt is not OutputFormat.json) as bar:
        result = sweep(spec, settings=settings, progress=bar)
    keys = list(spec.space)
    rows = [(rank + 1, t.run or "", *(t.params[k] for k in keys), t.accuracy, t.std, round(t.train_seconds, 2),
             "" if t.epochs is None else f"{t.epochs}{' (stopped)' if t.stopped else ''}")
            for rank, t in enumerate(result.trials)]
    saved = None
    if result.saved is not None:
        saved = {"name": result.saved.name, "path": result.saved.path, "run": result.saved.run,
                 "test": result.saved.test_summary}
    doc = {"sweep": result.sweep, "model": model, "engine": spec.engine, "workers": result.workers,
           "validation": spec.validation, "seconds": round(result.seconds, 3),
           "trials": [{"rank": r, "run": t.run, "params": t.params, "accuracy": t.accuracy, "std": t.std,
                       "train_seconds": t.train_seconds, "epochs": t.epochs, "stopped": t.stopped,
                       "folds": list(t.folds)} for r, t in enumerate(result.trials, 1)],
           "best": {"run": result.best.run, "params": result.best.params, "accuracy": result.best.accuracy},
           "compare": result.compare_command, "saved": saved, "dry_run": dry_run}
    title = (f"sweep {result.sweep}: {len(result.trials)} trials of {model} in {result.seconds:.1f} s on "
             f"{spec.engine} ({spec.validation}); best {result.best.accuracy:.4f}")
    if result.compare_command:
        title += f"; compare: {result.compare_command}"
    if saved is not None:
        title += f"; best saved as {saved['name']!r} (test accuracy {saved['test'].get('accuracy', float('nan')):.4f})"
    emit(doc, fmt, title=title,
         columns=["rank", "run", *keys, "accuracy", "std", "train s", "epochs"], rows=rows)
