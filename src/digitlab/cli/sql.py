"""``digitlab sql``: query the store."""

from __future__ import annotations

from pathlib import Path

import typer

from digitlab.cli._common import FormatOption, HomeOption, OutputFormat, emit, settings_from


def sql_command(
    query: str = typer.Argument(
        ..., help='SQL, e.g. "SELECT label, count(*) FROM mnist_train GROUP BY ALL"; several statements may be '
                  "separated by ';' (the last one's result is printed)."),
    write: bool = typer.Option(False, "--write", help="Open the store read-write: allow CREATE, INSERT, DROP, ... "
                                                      "(read-only by default)."),
    allow_extensions: bool = typer.Option(False, "--allow-extensions",
                                          help="Allow INSTALL and LOAD of DuckDB extensions (off by default)."),
    timeout: float | None = typer.Option(None, "--timeout", min=0,
                                         help="Seconds to wait while another process writes the store (default: "
                                              "$DIGITLAB_STORE_TIMEOUT, else 60)."),
    fmt: OutputFormat = FormatOption,
    home: Path | None = HomeOption,
) -> None:
    """Run SQL over the store (DuckDB) and print the result as a table, CSV or JSON.

    The store opens read-only unless --write is given. Queries keep DuckDB's own
    power over files: read_csv('...'), read_parquet('...') and COPY ... TO '...'
    read and write any file you can; extensions are never installed or loaded
    unless --allow-extensions is given.
    """
    from digitlab.store import Store  # duckdb: imported by the commands that use the store, not by every command

    store = Store(settings_from(home=home).store_path, timeout=timeout)
    result = store.query(query, write=write, allow_extensions=allow_extensions)
    emit({"columns": result.columns, "rows": result.records()}, fmt, columns=result.columns, rows=result.rows)
