"""``digitlab show TABLE ID``: print a stored digit in the terminal, or write it as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from digitlab.cli._common import DataDirOption, FormatOption, HomeOption, OutputFormat, console, emit, settings_from
from digitlab.errors import NotFoundError, UserError

__all__ = ["load_row", "show_command", "text_digit"]

#: Grey levels from paper to full ink, for the terminal picture.
_SHADES = " .:-=+*#%@"


def load_row(table: str, row_id: int, data_dir: Path | None, home: Path | None) -> tuple[np.ndarray, int]:
    """The 28x28 pixels and label of row ``row_id`` of dataset ``table`` (``mnist_train``, ``mnist_test`` or
    a store table).

    Raises
    ------
    NotFoundError
        No such dataset, or no row with that id.
    """
    from digitlab.data.select import load_dataset

    images, labels, _ = load_dataset(settings_from(data_dir=data_dir, home=home), table, f"id = {int(row_id)}")
    if len(labels) == 0:
        raise NotFoundError(f"{table} has no row with id {row_id}")
    return images[0].reshape(28, 28), int(labels[0])


def text_digit(image: np.ndarray) -> str:
    """The digit as 28 lines of 56 characters (each pixel twice, so it looks square), darker for more ink."""
    levels = (np.asarray(image, dtype=np.int64) * len(_SHADES)) // 256
    return "\n".join("".join(_SHADES[v] * 2 for v in row) for row in levels)


def show_command(
    table: str = typer.Argument(..., help="mnist_train, mnist_test, or a store table ('digitlab data import')."),
    row_id: int = typer.Argument(..., metavar="ID", help="The row's id (its 0-based place in the source)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the digit as a PNG."),
    scale: int = typer.Option(1, "--scale", min=1, max=40, help="With --out: pixels per MNIST pixel."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Print a stored digit and its label; --out writes it as a PNG (white ink on black, as stored)."""
    from digitlab.figures import save_png

    if out is not None and out.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, got {str(out)!r}")
    image, label = load_row(table, row_id, data_dir, home)
    written = None
    if out is not None:
        written = save_png(np.kron(image, np.ones((scale, scale), dtype=np.uint8)), out)
    doc = {"table": table, "id": row_id, "label": label, "out": written, "pixels": image.tolist()}
    if fmt is OutputFormat.csv:
        emit(doc, fmt, columns=["table", "id", "label", "out", *(f"pixel{i}" for i in range(784))],
             rows=[(table, row_id, label, written, *image.reshape(-1).tolist())])
        return

    def render() -> None:
        console.print(f"{table} id {row_id}: label {label}" + (f", written to {written}" if written else ""),
                      highlight=False, soft_wrap=True)
        console.print(text_digit(image), highlight=False, markup=False, soft_wrap=True)

    emit(doc, fmt, render=render)
