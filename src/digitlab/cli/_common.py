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
"""

from __future__ import annotations

import contextlib
import enum
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
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
    "progress",
    "settings_from",
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
        Printed as one JSON document with ``--format json``.
    columns, rows : optional
        A table shown for ``table`` (Rich) and ``csv`` formats.
    render : callable, optional
        Custom rendering for the table format when no ``columns``/``rows``.
    """
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(to_jsonable(result), ensure_ascii=False) + "\n")
        return
    if fmt is OutputFormat.csv and columns is not None and rows is not None:
        import csv
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[("" if v is None else v) for v in to_jsonable(list(r))] for r in rows])
        return
    if columns is not None and rows is not None:
        table = Table(title=title)
        for c in columns:
            table.add_column(str(c))
        for r in rows:
            table.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in r))
        console.print(table)
    elif render is not None:
        render()
    else:
        console.print_json(json.dumps(to_jsonable(result)))


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
        except UserError as exc:
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
