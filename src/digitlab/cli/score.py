"""``digitlab score``: a saved model over a pile of images, into Parquet, on this machine or a Ray cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from digitlab.cli._common import DataDirOption, FormatOption, HomeOption, OutputFormat, emit, progress, settings_from

__all__ = ["score_command"]


def score_command(
    model: str = typer.Argument(..., help="A saved model's name (default: the bundled CNN) or a model folder."),
    source: str = typer.Argument(..., help="Parquet file/folder/glob (a 'pixels' or 'image' column), an IDX or CSV "
                                           "file, an image folder or glob, or a store table (table:NAME)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder of Parquet files, one per partition "
                                                      "(e.g. digits.parquet)."),
    engine: str = typer.Option("local", "--engine", help="local (this machine's cores) or ray (a Ray cluster)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to join ('auto': the one this machine "
                                                               "is in; default $RAY_ADDRESS, else a local Ray)."),
    batch_size: int = typer.Option(2048, "--batch-size", help="Rows read, scored and written at a time."),
    partition_rows: int = typer.Option(50_000, "--partition-rows", help="At most this many rows per partition "
                                                                        "(one output file each)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes or Ray actors (default: every "
                                                               "core or cluster CPU)."),
    id_column: str | None = typer.Option(None, "--id-column", help="Id column of a Parquet source or table "
                                                                   "(default: 'id' if there is one, else the row "
                                                                   "number)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh instead of resuming what --out holds."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Score every image of SOURCE with MODEL: id, digit, probabilities (and error) per row, in Parquet.

    A killed run resumes: the same command skips the partitions already written.
    """
    from digitlab.score import ScoreSpec, score

    spec = ScoreSpec(model=model, source=source, out=out, engine=engine, address=address, batch_size=batch_size,
                     partition_rows=partition_rows, workers=workers, id_column=id_column, overwrite=overwrite)
    with progress(fmt is not OutputFormat.json) as bar:
        result = score(spec, settings=settings_from(data_dir=data_dir, home=home), progress=bar)
    doc = {"images": result.images, "errors": result.errors, "seconds": round(result.seconds, 3),
           "images_per_second": round(result.images_per_second, 1), "out": result.out,
           "partitions": result.partitions, "skipped": result.skipped, "images_total": result.images_total,
           "errors_total": result.errors_total, "engine": result.engine, "workers": result.workers,
           "startup_seconds": round(result.startup_seconds, 3)}
    skipped = f", {result.skipped} of {result.partitions} partitions already done" if result.skipped else ""
    emit(doc, fmt, title=f"scored {result.images} images with {model} on {result.engine} ({result.workers} "
                         f"worker{'s' if result.workers != 1 else ''}){skipped}; results in {result.out}",
         columns=["images", "errors", "seconds", "images/s", "images in out", "errors in out"],
         rows=[(result.images, result.errors, round(result.seconds, 2), round(result.images_per_second),
                result.images_total, result.errors_total)])
