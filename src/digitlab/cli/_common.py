"""What every digitlab command shares: output formats, errors, progress.

Conventions
-----------
* A command that prints a result takes ``--format`` (:class:`OutputFormat`)
  and, with ``json``, prints exactly one JSON document on stdout via :func:`emit`.
* Library errors become exit codes only here: :class:`~digitlab.errors.UserError`
  exits 2, any other failure exits 1; one line on stderr, never a traceback.
* Long work reports through a :data:`~digitlab.models.base.ProgressFn`; :func:`progress`
  shows it as Rich progress bars on a terminal and stays quiet in JSON mode or when piped.
* A command parses its options, makes one library call (mostly a
  :mod:`digitlab.workflows` function) and prints the result with :func:`emit`.
* Tables never truncate data: a table too wide for the terminal is printed
  as one ``column: value`` block per row instead (:func:`print_table`), and
  titles wrap between words. ``--format csv`` is honoured by every command:
  a result without a table is written as ``key,value`` rows.
* In a pipe that closes early (``digitlab sql ... -f csv | head -1``) the
  command stops quietly with exit code 0, as Unix tools do.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from digitlab._json import to_jsonable
from digitlab.errors import DigitlabError, UserError
from digitlab.settings import Settings, get_settings

if TYPE_CHECKING:
    from rich.progress import TaskID
    from typer._click.core import Context as ClickContext  # the click that Typer vendors: what invoke is given

    from digitlab.models.base import ProgressFn

__all__ = [
    "DataDirOption",
    "DigitlabGroup",
    "FormatOption",
    "HomeOption",
    "OutputFormat",
    "console",
    "emit",
    "err_console",
    "print_table",
    "progress",
    "quiet_broken_pipe",
    "settings_from",
    "suggest",
    "to_jsonable",
]

console = Console()
err_console = Console(stderr=True)


class OutputFormat(str, enum.Enum):
    """How a command prints its result."""

    table = "table"
    json = "json"
    csv = "csv"


FormatOption = typer.Option(OutputFormat.table, "--format", "-f", help="Output: table, json or csv.")
DataDirOption = typer.Option(
    None, "--data-dir", help="MNIST folder (default: $DIGITLAB_DATA, else the user cache folder).")
HomeOption = typer.Option(
    None, "--home", help="Store and models folder (default: $DIGITLAB_HOME, else the user data folder).")


def settings_from(data_dir: Path | None = None, home: Path | None = None) -> Settings:
    """Settings from the common options, falling back to environment and defaults."""
    return get_settings(data_dir=data_dir, home=home)


def emit(result: object, fmt: OutputFormat, *, columns: Sequence[str] | None = None,
         rows: Sequence[Sequence[object]] | None = None, title: str | None = None,
         render: Callable[[], None] | None = None) -> None:
    """Print a command's result.

    Parameters
    ----------
    result : any JSON-able value
        Printed as one JSON document with ``--format json``; with ``csv`` and
        no ``columns``/``rows`` it is written as rows of :func:`csv_rows`.
    columns, rows : optional
        A table shown for ``table`` (:func:`print_table`) and ``csv`` formats.
    render : callable, optional
        Custom rendering for the table format when no ``columns``/``rows``.
    """
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(to_jsonable(result), ensure_ascii=False) + "\n")
        return
    if fmt is OutputFormat.csv:
        import csv

        if columns is None or rows is None:
            columns, rows = csv_rows(result)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[("" if v is None else v) for v in to_jsonable(list(r))] for r in rows])
        return
    if columns is not None and rows is not None:
        print_table(columns, rows, title=title)
    elif render is not None:
        render()
    else:
        console.print_json(json.dumps(to_jsonable(result)))


def csv_rows(result: object) -> tuple[list[str], list[list[object]]]:
    """A result without a table as CSV rows.

    A list of objects gives one row per object (a column per key); an object
    gives ``key,value`` rows with nested keys joined by dots
    (``metrics.per_class.3.f1``); lists inside are written as JSON.
    """
    doc = to_jsonable(result)
    if isinstance(doc, list) and all(isinstance(d, dict) for d in doc):
        keys: list[str] = []
        for d in doc:
            keys += [k for k in d if k not in keys]
        return keys, [[_csv_cell(d.get(k)) for k in keys] for d in doc]
    if isinstance(doc, dict):
        flat: list[list[object]] = []

        def walk(prefix: str, value: object) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                flat.append([prefix, _csv_cell(value)])

        walk("", doc)
        return ["key", "value"], flat
    return ["value"], [[_csv_cell(doc)]]


def _csv_cell(value: object) -> object:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_table(columns: Sequence[object], rows: Sequence[Sequence[object]], *, title: str | None = None,
                out: Console | None = None) -> None:
    """Print a table that never cuts a value.

    Columns wrap between words; when even that does not fit the terminal
    (a value's longest word in each column, side by side, is wider than it),
    the table loses its vertical borders, and if it still does not fit every
    row is printed as a block of ``column: value`` lines instead (a table of
    one or two columns is printed as it is, its words wider than the terminal
    folded onto the next line, never cut). The
    title is printed above, wrapped between words at the terminal's width.
    """
    target = out or console
    if title:
        target.print(Text(title, style="bold"), highlight=False)
    cells = [[_cell(v) for v in r] for r in rows]
    for style in (box.HEAVY_HEAD, box.SIMPLE_HEAD):  # with borders; else without the vertical ones
        bordered = style is box.HEAVY_HEAD
        table = Table(show_header=True, header_style="bold", box=style, pad_edge=bordered,
                      collapse_padding=not bordered)
        for c in columns:
            table.add_column(str(c), overflow="fold")
        for r in cells:
            table.add_row(*r)
        # measured without the terminal's bound (Rich clamps a measurement to it)
        if Measurement.get(target, target.options.update_width(1 << 20), table).minimum <= target.width:
            target.print(table)
            return
    if len(columns) <= 2:  # already a key/value listing: its values wrap, folding only words wider than the line
        target.print(table)
        return
    names = [str(c).replace("\n", " ") for c in columns]
    for i, r in enumerate(cells):
        block = Table.grid(padding=(0, 1))
        block.add_column(style="bold", no_wrap=True)
        block.add_column(overflow="fold")
        for name, value in zip(names, r, strict=True):
            block.add_row(f"{name}:", value)
        if i:
            target.print()
        target.print(block)


def suggest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to a misspelt ``word`` (difflib's ratio at least 0.6), or None."""
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def quiet_broken_pipe() -> None:
    """Send whatever is still written to stdout to the null device: the reader of the pipe has gone.

    As Python's documentation recommends for ``BrokenPipeError``, so that the
    interpreter's last flush at exit does not fail again with a message.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def progress(enabled: bool = True) -> Iterator[ProgressFn]:
    """Yield a progress function drawing one Rich bar per key on stderr when it is a terminal.

    ``progress(key, completed, total, **info)``: ``key`` names a bar; ``info`` is shown beside it.
    """
    if not enabled or not err_console.is_terminal:
        yield lambda *a, **k: None
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=err_console, transient=False)
    tasks: dict[str, TaskID] = {}

    def update(key: str, completed: float, total: float | None = None, **info: object) -> None:
        text = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        if key not in tasks:
            tasks[key] = bars.add_task(key, total=total, info=text)
        bars.update(tasks[key], completed=completed, total=total, info=text)

    with bars:
        yield update


class DigitlabGroup(TyperGroup):
    """Root command group: turns library errors into one line and an exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:  # the reader of our output has gone (``| head``): stop quietly, as Unix tools do
            quiet_broken_pipe()
            raise typer.Exit(0) from None
        except UserError as exc:  # escaped: a message may hold brackets ("pip install 'digitlab[train]'")
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except DigitlabError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except MemoryError:
            err_console.print("[red]internal error:[/red] out of memory")
            raise typer.Exit(1) from None
        except Exception as exc:
            err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None
