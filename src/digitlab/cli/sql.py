"""``digitlab sql``: query the store."""

from __future__ import annotations

from pathlib import Path

import typer

from digitlab.cli._common import FormatOption, HomeOption, OutputFormat, emit, settings_from


def sql_command(
    query: str = typer.Argument(
        ..., help='An SQL statement, e.g. "SELECT label, count(*) FROM mnist_train GROUP BY ALL".'),
    fmt: OutputFormat = FormatOption,
    home: Path | None = HomeOption,
) -> None:
    """Run SQL over the store (DuckDB) and print the result as a table, CSV or JSON."""
    from digitlab.store import Store  # duckdb: imported by the commands that use the store, not by every command

    result = Store(settings_from(home=home).store_path).query(query)
    emit({"columns": result.columns, "rows": result.records()}, fmt, columns=result.columns, rows=result.rows)
