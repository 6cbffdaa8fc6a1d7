"""``digitlab data``: fetch, import, describe and explore datasets."""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path

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
from digitlab.data import Format, fetch_mnist
from digitlab.data.mnist import label_counts
from digitlab.data.select import MNIST, import_dataset

data_app = typer.Typer(help="Fetch, import, describe and explore datasets.", no_args_is_help=True)


@data_app.command("fetch")
def fetch(
    data_dir: Path | None = DataDirOption,
    source: Path | None = typer.Option(None, "--from", help="Copy from this local folder instead of downloading."),
    timeout: float = typer.Option(30.0, min=0.1, help="Seconds to wait for a connection or for more data, per "
                                                      "attempt at a file (a slow link only takes longer)."),
    retries: int = typer.Option(3, min=1, help="Attempts per mirror at a file whose transfer stalls or breaks."),
    fmt: OutputFormat = FormatOption,
) -> None:
    """Download the four MNIST files (verified by sha256) into the data folder, with a progress bar per file."""
    settings = settings_from(data_dir=data_dir)
    with progress(fmt is not OutputFormat.json) as bar:
        def report(name: str, done: int, total: int | None) -> None:
            bar(name, done, total)
        paths = fetch_mnist(settings.data_dir, source=source, timeout=timeout, retries=retries, progress=report)
    emit({"data_dir": settings.data_dir, "files": paths}, fmt,
         columns=["file", "path"], rows=[(k, str(v)) for k, v in paths.items()])


@data_app.command("info")
def info(data_dir: Path | None = DataDirOption, fmt: OutputFormat = FormatOption) -> None:
    """Count MNIST images per split and label."""
    settings = settings_from(data_dir=data_dir)
    counts = label_counts(settings.data_dir)
    result = {"data_dir": settings.data_dir,
              "splits": {s: {"total": sum(c), "per_label": c} for s, c in counts.items()}}
    emit(result, fmt, title=f"MNIST in {settings.data_dir}",
         columns=["split", "total", *map(str, range(10))],
         rows=[(s, sum(c), *c) for s, c in counts.items()])


class ImportFormat(str, enum.Enum):
    """``--format`` of ``data import``: an input format, or the output format."""

    idx = "idx"
    csv = "csv"
    npz = "npz"
    images = "images"
    parquet = "parquet"
    unipen = "unipen"
    json = "json"
    table = "table"


class LabelOption(str, enum.Enum):
    """``--label`` of ``data import``: where a CSV file's label column is."""

    auto = "auto"
    first = "first"
    last = "last"


@data_app.command("import")
def import_(
    path: str = typer.Argument(..., help="'mnist' for both MNIST splits, or a file or folder to import."),
    name: str | None = typer.Option(None, "--name", help="Table name (required unless PATH is 'mnist')."),
    formats: list[ImportFormat] = typer.Option(
        [], "--format", "-f",
        help="Input format idx|csv|npz|images|parquet|unipen (default: guessed from PATH; .tra/.tes are "
             "unipen), and/or output json|table; repeatable."),
    replace: bool = typer.Option(False, "--replace", help="Replace tables of the same name (refused without it)."),
    label: LabelOption = typer.Option(LabelOption.auto, "--label",
                                      help="CSV: the label column is the first or the last (default: from a header, "
                                           "else from the data; an ambiguous file is refused)."),
    split: str = typer.Option("train", help="For .npz files and IDX folders: train or test."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
) -> None:
    """Load a dataset into the store as a table, in one short write (an existing table needs --replace).

    ``digitlab data import mnist`` creates ``mnist_train`` and ``mnist_test``;
    ``digitlab data import digits.csv.gz --name mine`` a table ``mine``;
    ``digitlab data import train-00000-of-00001.parquet --name hf`` reads Hugging Face's MNIST layout;
    ``digitlab data import pendigits-orig.tra.gz --name pendigits`` draws UNIPEN pen trajectories as the page
    draws strokes and keeps columns ``writer`` and ``strokes`` (JSON).
    """
    fmt_in = next((Format(f.value) for f in formats if f.value in Format.__members__), None)
    out = OutputFormat.json if ImportFormat.json in formats else OutputFormat.table
    if name is None and not (path == MNIST and not Path(path).exists()):
        raise typer.BadParameter("--name is required when importing a file or folder", param_hint="--name")
    settings = settings_from(data_dir=data_dir, home=home)
    start = time.perf_counter()
    with progress(out is not OutputFormat.json) as bar:
        imported = import_dataset(settings, path, name, fmt_in, split=split, replace=replace, label=label.value,
                                  progress=bar)
    result = {"store": settings.store_path, "tables": imported, "seconds": round(time.perf_counter() - start, 3)}
    emit(result, out, columns=["table", "rows"], rows=list(imported.items()),
         title=f"Imported into {settings.store_path} in {result['seconds']} s")


@data_app.command("explore")
def explore(
    out: Path = typer.Option(..., "--out", help="Folder for the PNG figures."),
    table: str | None = typer.Option(None, "--table", help="A store table instead of MNIST train."),
    threshold: float = typer.Option(100.0, help="Variance threshold for the kept-pixels figure."),
    seed: int = typer.Option(0, help="Seed for the random samples."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Write figures: samples per label, mean digits, class counts, high-variance pixels."""
    from digitlab.explore import explore_dataset

    settings = settings_from(data_dir=data_dir, home=home)
    result = explore_dataset(settings, table or "mnist_train", out, threshold=threshold, seed=seed)
    emit(dataclasses.asdict(result), fmt, render=lambda: console.print(
        f"{result.kept_pixels} of 784 pixels have variance > {threshold:g}; figures in {out}:\n  "
        + "\n  ".join(str(f) for f in result.figures.values())))


@data_app.command("export")
def export(
    table: str = typer.Argument(..., help="The dataset to write: drawings (MLPaint's corrections), any store table, "
                                          "mnist_train or mnist_test."),
    out: Path = typer.Option(..., "--out", help="Folder to write: one sub-folder per label, one PNG per row."),
    where: str | None = typer.Option(None, "--where", help="SQL condition selecting the rows, e.g. \"label = 7\" "
                                                           "or, for drawings, \"profile = 'alice'\"."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Write a dataset as an image folder (DIR/<label>/<id>.png), so that the drawings go anywhere."""
    from digitlab.data.export import export_dataset

    settings = settings_from(data_dir=data_dir, home=home)
    result = export_dataset(settings, table, out, where=where)
    emit(dataclasses.asdict(result), fmt, title=f"{result.n} images of {table} written to {result.folder}",
         columns=["label", "images"], rows=list(result.per_label.items()))
