"""The embedded SQL store: every dataset is a DuckDB table.

Dataset tables have columns ``id INTEGER`` (0-based row number in the
source), ``label UTINYINT`` and ``pixels UTINYINT[784]`` (row-major; DuckDB
arrays are 1-based, so pixel (r, c) is ``pixels[28*r + c + 1]``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from digitlab.errors import DigitlabError, NotFoundError, UserError

__all__ = ["QueryResult", "Store", "check_name"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid table name, else raise UserError."""
    if not _NAME.match(name):
        raise UserError(f"table name must be letters, digits and '_' (not starting with a digit), got {name!r}")
    return name


@dataclass(frozen=True)
class QueryResult:
    """Rows of a query with their column names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import query_html
        return query_html(self)

    def records(self) -> list[dict[str, Any]]:
        """The rows as a list of ``{column: value}`` dicts."""
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


class Store:
    """A DuckDB database file holding datasets, runs and predictions.

    Parameters
    ----------
    path : path-like
        The database file; its folder is created on first write.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a connection for the duration of a ``with`` block."""
        if read_only and not self.path.exists():
            raise NotFoundError(f"the store {self.path} does not exist yet; import a dataset first "
                                "('digitlab data import mnist')")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise DigitlabError(f"cannot open the store {self.path}: {exc}") from None
        try:
            yield con
        finally:
            con.close()

    def import_arrays(self, name: str, images: np.ndarray, labels: np.ndarray,
                      ids: np.ndarray | None = None) -> int:
        """Create or replace table ``name`` from arrays, in one transaction.

        Parameters
        ----------
        images : ndarray of uint8, shape (n, 28, 28) or (n, 784)
        labels : ndarray of int, shape (n,)
        ids : ndarray of int, shape (n,), optional
            Defaults to ``0..n-1``.

        Returns
        -------
        int
            Number of rows imported. On failure the previous table is untouched.
        """
        check_name(name)
        flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), 784)
        ids = np.arange(len(flat), dtype=np.int32) if ids is None else np.asarray(ids, dtype=np.int32)
        table = pa.table({
            "id": pa.array(ids),
            "label": pa.array(np.asarray(labels, dtype=np.uint8)),
            "pixels": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), 784),
        })
        with self.connect() as con:
            con.register("_incoming", table)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming ORDER BY id')
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return len(flat)

    def tables(self) -> list[str]:
        """Names of the dataset tables (those with id, label and pixels columns)."""
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT table_name FROM information_schema.columns WHERE column_name IN ('id','label','pixels') "
                "GROUP BY table_name HAVING count(*) = 3 ORDER BY table_name").fetchall()
        return [r[0] for r in rows]

    def load(self, name: str, where: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read a dataset table, optionally filtered by an SQL ``WHERE`` condition.

        Returns
        -------
        images : ndarray of uint8, shape (n, 28, 28)
        labels : ndarray of int64, shape (n,)
        ids : ndarray of int64, shape (n,)
        """
        check_name(name)
        if name not in self.tables():
            raise NotFoundError(f"no dataset table {name!r} in the store; known: {', '.join(self.tables()) or 'none'}"
                                " (import with 'digitlab data import')")
        sql = f'SELECT id, label, pixels FROM "{name}"' + (f" WHERE {where}" if where else "") + " ORDER BY id"
        with self.connect(read_only=True) as con:
            try:
                tbl = con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                raise UserError(f"bad --where condition {where!r}: {str(exc).splitlines()[0]}") from None
        pixels = tbl.column("pixels").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        images = np.asarray(pixels, dtype=np.uint8).reshape(-1, 28, 28)
        labels = tbl.column("label").to_numpy(zero_copy_only=False).astype(np.int64)
        ids = tbl.column("id").to_numpy(zero_copy_only=False).astype(np.int64)
        return images, labels, ids

    def query(self, sql: str) -> QueryResult:
        """Run one SQL statement and return its rows.

        Raises
        ------
        UserError
            When DuckDB rejects the statement; the message is DuckDB's first line.
        """
        with self.connect() as con:
            try:
                cur = con.execute(sql)
                columns = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else []
            except duckdb.Error as exc:
                raise UserError(f"SQL error: {str(exc).splitlines()[0]}") from None
        return QueryResult(columns, rows)
