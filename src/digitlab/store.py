"""The embedded SQL store: every dataset is a DuckDB table, shared safely by many processes.

Dataset tables have columns ``id INTEGER`` (0-based row number in the
source), ``label UTINYINT`` and ``pixels UTINYINT[784]`` (row-major; DuckDB
arrays are 1-based, so pixel (r, c) is ``pixels[28*r + c + 1]``).

Sharing (see ``docs/store.md``)
-------------------------------
DuckDB lets one process open a database file read-write, or any number of
processes open it read-only, never both at once. So:

* readers (:meth:`Store.load`, :meth:`Store.tables`, :meth:`Store.query`
  by default) open it read-only, and every connection lives only as long as
  one operation;
* every open waits for a conflicting process with a bounded retry, announced
  once on the ``digitlab.store`` logger ("store busy, waiting…", on stderr
  unless logging is configured), up to :attr:`Store.timeout` seconds
  (``$DIGITLAB_STORE_TIMEOUT``, default 60); past it :class:`StoreBusyError`;
* work that must never be lost (a run and its predictions) is first *staged*
  as files beside the database (``digitlab.duckdb.pending/``), then applied in
  one short write transaction; when the store stays busy it stays staged and
  the next write of any process applies it (:meth:`Store.append`, :meth:`Store.flush`).

Inside one process, threads take turns (DuckDB refuses two connections to one
file with different settings), so a server can share a :class:`Store` between
its threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from digitlab._io import atomic_dir
from digitlab.errors import DigitlabError, NotFoundError, StoreBusyError, UserError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_TIMEOUT", "SEALED_CONFIG", "TIMEOUT_ENV", "PendingWrite", "QueryResult", "Store", "StoreBusyError",
           "check_name", "check_where", "first_line", "store_timeout"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: Seconds a store operation waits for another process by default.
DEFAULT_TIMEOUT = 60.0
#: The environment variable that sets that wait.
TIMEOUT_ENV = "DIGITLAB_STORE_TIMEOUT"
#: The table that remembers which staged writes were applied (so none is applied twice).
APPLIED_TABLE = "_digitlab_writes"

log = logging.getLogger("digitlab.store")

_Config = dict[str, str | bool | int | float | list[str]]

#: DuckDB settings of every connection: no extension is installed or loaded behind the user's back, and SQL
#: cannot change the settings back (``lock_configuration``).
_SAFE: _Config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
         "allow_community_extensions": False, "lock_configuration": True}
#: ... and of a ``--where`` condition's connection: no file, network or extension access at all.
SEALED_CONFIG: _Config = {**_SAFE, "enable_external_access": False}
#: The only table functions a ``--where`` condition may call: none of them reads a file or another database.
_WHERE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

# One lock per database file per process: DuckDB refuses a second connection with other settings in the same
# process, and threads must not see each other's half-open connections.
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.RLock:
    key = os.path.abspath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid table name, else raise UserError."""
    if not _NAME.match(name):
        raise UserError(f"table name must be letters, digits and '_' (not starting with a digit), got {name!r}")
    return name


def store_timeout(value: float | str | None = None) -> float:
    """Seconds to wait for a busy store: ``value``, else ``$DIGITLAB_STORE_TIMEOUT``, else :data:`DEFAULT_TIMEOUT`.

    Raises
    ------
    UserError
        The value is not a number >= 0.
    """
    source = "timeout" if value is not None else TIMEOUT_ENV
    raw = value if value is not None else os.environ.get(TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"{source} must be a number of seconds >= 0, got {raw!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise UserError(f"{source} must be a number of seconds >= 0, got {raw!r}")
    return seconds


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.IOException) and ("could not set lock" in text or "conflicting lock" in text)


def _holder(exc: BaseException) -> str:
    m = re.search(r"\(PID (\d+)\)", str(exc))
    return f" (held by process {m.group(1)})" if m else ""


def first_line(exc: BaseException) -> str:
    """DuckDB's message without its ``LINE 1: ...`` context, keeping hints such as "Did you mean"."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    kept = [ln for ln in lines if not ln.startswith("LINE ") and not ln.strip().startswith("^")]
    return " ".join(kept) if kept else str(exc)


# --------------------------------------------------------------------------------------------- where


def check_where(where: str) -> str:
    """Return ``where`` if it is one SQL condition over a dataset's rows, else raise :class:`UserError`.

    The rule (``--where``, ``TrainSpec.where``): one expression, no ``;``, no
    statement, and no table function that reads files, globs or other
    databases (``read_csv``, ``read_parquet``, ``glob``, ...). Subqueries over
    the store's own tables are allowed. The condition also runs on a
    connection without file or network access, so this check is not the
    only guard.
    """
    text = where.strip()
    if not text:
        raise UserError("bad --where condition '': it must be an SQL condition over the table's columns (id, "
                        "label, pixels, ...)")
    if ";" in text:
        raise UserError(f"bad --where condition {where!r}: it must be one SQL condition, without ';'")
    con = duckdb.connect(config=SEALED_CONFIG)
    try:
        raw = con.execute("SELECT json_serialize_sql(?)", [f"SELECT 1 FROM _rows WHERE ({text})"]).fetchone()
    finally:
        con.close()
    tree: dict[str, Any] = json.loads(raw[0]) if raw else {"error": True}
    statements = tree.get("statements") or []
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    if tree.get("error") or node.get("type") != "SELECT_NODE" or node.get("modifiers") \
            or node.get("from_table", {}).get("table_name") != "_rows" or node.get("group_expressions") \
            or node.get("having") or node.get("qualify") or node.get("cte_map", {}).get("map"):
        detail = f" ({tree['error_message']})" if tree.get("error_message") else ""
        raise UserError(f"bad --where condition {where!r}: it must be one SQL condition over the table's "
                        f"columns (id, label, pixels, ...){detail}")
    for fn in _table_functions(node):
        if fn.lower() not in _WHERE_TABLE_FUNCTIONS:
            raise UserError(f"bad --where condition {where!r}: it may not call the table function {fn}() (a "
                            "condition reads only the store's tables, never files)")
    return where


def _table_functions(tree: object) -> Iterator[str]:
    """Names of every table function in a serialized DuckDB parse tree."""
    if isinstance(tree, dict):
        if tree.get("type") == "TABLE_FUNCTION":
            yield str((tree.get("function") or {}).get("function_name", "?"))
        for v in tree.values():
            yield from _table_functions(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _table_functions(v)


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class QueryResult:
    """The result of a query: column names and rows, or the Arrow table itself.

    ``result.rows`` are tuples of Python values, ``result.arrow()`` the
    :class:`pyarrow.Table` and ``result.df()`` a pandas DataFrame (pandas is
    optional: only ``df`` needs it).
    """

    columns: list[str]
    table: pa.Table = field(repr=False)

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as tuples, in the columns' order."""
        cols = [c.to_pylist() for c in self.table.columns]
        return list(zip(*cols, strict=True)) if cols else []

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import query_html
        return query_html(self)

    def records(self) -> list[dict[str, Any]]:
        """The rows as a list of ``{column: value}`` dicts."""
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def arrow(self) -> pa.Table:
        """The result as an Arrow table (no copy)."""
        return self.table

    def df(self) -> pd.DataFrame:
        """The result as a pandas DataFrame.

        Raises
        ------
        UserError
            pandas is not installed.
        """
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise UserError("QueryResult.df() needs pandas: pip install pandas (or use .arrow())") from None
        return self.table.to_pandas()

    def __len__(self) -> int:
        return int(self.table.num_rows)


@dataclass(frozen=True)
class PendingWrite:
    """Rows staged beside the store, waiting to be applied in one transaction.

    Attributes
    ----------
    key : str
        Unique id of the write.
    path : Path
        Its folder (``manifest.json`` and one Arrow file per table).
    """

    key: str
    path: Path


# --------------------------------------------------------------------------------------------- the store


class Store:
    """A DuckDB database file holding datasets, runs and predictions, safe to share between processes.

    Parameters
    ----------
    path : path-like
        The database file; its folder is created on first write.
    timeout : float, optional
        Seconds to wait for another process holding the store; default
        :func:`store_timeout` (``$DIGITLAB_STORE_TIMEOUT``, else 60).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
        self.path = Path(path)
        self._timeout = None if timeout is None else store_timeout(timeout)

    @property
    def timeout(self) -> float:
        """Seconds an operation waits for a busy store."""
        return self._timeout if self._timeout is not None else store_timeout()

    @property
    def pending_dir(self) -> Path:
        """Where writes wait when the store is busy: ``<store>.pending/``."""
        return self.path.with_name(self.path.name + ".pending")

    # ------------------------------------------------------------------ connections

    @contextlib.contextmanager
    def connect(self, read_only: bool = False, *,
                config: _Config | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a connection for the duration of a ``with`` block, waiting while another process holds the store.

        Parameters
        ----------
        read_only : bool
            Open read-only: many readers at once, no writer meanwhile.
        config : mapping, optional
            DuckDB settings; default: no automatic extension install or load,
            settings locked.

        Raises
        ------
        NotFoundError
            ``read_only`` and the store does not exist yet.
        StoreBusyError
            Another process held the store for longer than :attr:`timeout`.
        """
        if read_only and not self.path.exists():
            raise NotFoundError(f"the store {self.path} does not exist yet; import a dataset first "
                                "('digitlab data import mnist')")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        timeout = self.timeout
        deadline = time.monotonic() + timeout
        lock = _process_lock(self.path)
        if not lock.acquire(timeout=timeout):
            raise StoreBusyError(self._busy_message(timeout, ""))
        try:
            con = self._open(read_only, dict(_SAFE if config is None else config), deadline, timeout)
            try:
                yield con
            finally:
                con.close()
        finally:
            lock.release()

    def _open(self, read_only: bool, config: _Config, deadline: float,
              timeout: float) -> duckdb.DuckDBPyConnection:
        announced = False
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise DigitlabError(f"cannot open the store {self.path}: {first_line(exc)}") from None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreBusyError(self._busy_message(timeout, _holder(exc))) from None
                if not announced:
                    log.warning("store busy%s, waiting up to %g s… (set %s to wait longer)", _holder(exc),
                                timeout, TIMEOUT_ENV)
                    announced = True
                time.sleep(min(left, delay * random.uniform(0.5, 1.5)))
                delay = min(delay * 2, 0.5)

    def _busy_message(self, timeout: float, holder: str) -> str:
        return (f"the store {self.path} stayed busy{holder} for {timeout:g} s; try again, or wait longer with "
                f"{TIMEOUT_ENV}=SECONDS")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: committed on success, rolled back on any exception.

        Staged writes of earlier, busy moments are applied first, in their own
        transactions. Keep the block short: no other process can read or write
        the store meanwhile.
        """
        with self.connect() as con:
            self._apply_pending(con)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ staged writes

    def stage(self, inserts: Mapping[str, pa.Table], schema: Sequence[str] = ()) -> PendingWrite:
        """Write rows to insert as files beside the store, without touching the database.

        Parameters
        ----------
        inserts : mapping of table name to pyarrow.Table
            Rows inserted ``BY NAME`` (columns missing from a table are NULL).
        schema : sequence of str
            ``CREATE TABLE IF NOT EXISTS`` statements run first.

        Returns
        -------
        PendingWrite
            Apply it with :meth:`flush` (or any later write does).
        """
        for name in inserts:
            check_name(name.lstrip("_"))
        key = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"
        target = self.pending_dir / key
        with atomic_dir(target) as tmp:
            tables = []
            for i, (name, tbl) in enumerate(inserts.items()):
                feather.write_feather(tbl, tmp / f"{i}.arrow", compression="zstd")
                tables.append({"table": name, "file": f"{i}.arrow"})
            (tmp / "manifest.json").write_text(json.dumps({"key": key, "schema": list(schema), "inserts": tables}),
                                               encoding="utf-8")
        return PendingWrite(key, target)

    def pending(self) -> list[PendingWrite]:
        """Staged writes not applied yet, oldest first."""
        if not self.pending_dir.is_dir():
            return []
        return [PendingWrite(p.name, p) for p in sorted(self.pending_dir.iterdir())
                if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]

    def pending_rows(self, table: str) -> pa.Table | None:
        """The staged rows for ``table`` not applied yet, or None: what readers show of a busy moment's work."""
        parts = []
        for w in self.pending():
            with contextlib.suppress(OSError, ValueError, pa.ArrowInvalid):
                manifest = json.loads((w.path / "manifest.json").read_text(encoding="utf-8"))
                for item in manifest["inserts"]:
                    if item["table"] == table:
                        parts.append(feather.read_table(w.path / item["file"]))
        if not parts:
            return None
        return pa.concat_tables(parts, promote_options="permissive")

    def flush(self, write: PendingWrite | None = None) -> bool:
        """Apply the staged writes in short transactions, waiting at most :attr:`timeout` for the store.

        Parameters
        ----------
        write : PendingWrite, optional
            The write the caller cares about: when it cannot be applied
            (its rows break a constraint) the error is raised.

        Returns
        -------
        bool
            True when everything staged is applied; False when the store stayed
            busy (the writes stay staged, announced on the ``digitlab.store``
            logger, and a later write applies them).
        """
        if not self.pending():
            return True
        try:
            with self.connect() as con:
                failed = self._apply_pending(con)
        except StoreBusyError as exc:
            log.warning("%s; the work is kept in %s and the next write to the store records it", exc,
                        self.pending_dir)
            return False
        if write is not None and write.key in failed:
            raise DigitlabError(f"could not record the write {write.key} in the store: {failed[write.key]}")
        return True

    def append(self, inserts: Mapping[str, pa.Table], schema: Sequence[str] = ()) -> bool:
        """Insert rows so that they are never lost: stage them, then apply them (:meth:`stage` + :meth:`flush`).

        Returns
        -------
        bool
            True when written to the store now; False when the store stayed
            busy and they wait in :attr:`pending_dir`.
        """
        write = self.stage(inserts, schema)
        return self.flush(write)

    def _apply_pending(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """Apply every staged write on an open read-write connection; returns the failed ones' errors by key."""
        failed: dict[str, str] = {}
        writes = self.pending()
        if not writes:
            return failed
        con.execute(f"CREATE TABLE IF NOT EXISTS {APPLIED_TABLE} (key VARCHAR PRIMARY KEY, applied TIMESTAMP)")
        for w in writes:
            try:
                manifest = json.loads((w.path / "manifest.json").read_text(encoding="utf-8"))
                tables = [(i["table"], feather.read_table(w.path / i["file"])) for i in manifest["inserts"]]
            except (OSError, ValueError, KeyError, pa.ArrowInvalid) as exc:
                failed[w.key] = f"unreadable staged write: {exc}"
                self._set_aside(w, failed[w.key])
                continue
            done = con.execute(f"SELECT count(*) FROM {APPLIED_TABLE} WHERE key = ?", [w.key]).fetchone()
            if done and done[0]:
                shutil.rmtree(w.path, ignore_errors=True)
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                for stmt in manifest.get("schema", []):
                    con.execute(stmt)
                for name, tbl in tables:
                    con.register("_staged", tbl)
                    con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM _staged')
                    con.unregister("_staged")
                con.execute(f"INSERT INTO {APPLIED_TABLE} VALUES (?, ?)",
                            [w.key, datetime.now(UTC).replace(tzinfo=None)])
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                failed[w.key] = first_line(exc)
                self._set_aside(w, failed[w.key])
                continue
            shutil.rmtree(w.path, ignore_errors=True)
        return failed

    def _set_aside(self, write: PendingWrite, reason: str) -> None:
        """Move a staged write that cannot be applied to ``pending/.failed/`` so that it blocks no other."""
        log.warning("a staged write cannot be applied (%s); kept in %s", reason,
                    self.pending_dir / ".failed" / write.key)
        with contextlib.suppress(OSError):
            (self.pending_dir / ".failed").mkdir(parents=True, exist_ok=True)
            os.replace(write.path, self.pending_dir / ".failed" / write.key)

    # ------------------------------------------------------------------ datasets

    def import_arrays(self, name: str, images: np.ndarray, labels: np.ndarray,
                      ids: np.ndarray | None = None, *, replace: bool = True) -> int:
        """Create (or replace) table ``name`` from arrays, in one transaction.

        Parameters
        ----------
        images : ndarray of uint8, shape (n, 28, 28) or (n, 784)
        labels : ndarray of int, shape (n,)
        ids : ndarray of int, shape (n,), optional
            Defaults to ``0..n-1``.
        replace : bool, default=True
            Replace a table of that name; when False an existing one is an error.

        Returns
        -------
        int
            Number of rows imported. On failure the previous table is untouched.

        Raises
        ------
        UserError
            ``replace`` is False and the table exists.
        """
        return self.import_many({name: (images, labels, ids)}, replace=replace)[name]

    def import_many(self, datasets: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]], *,
                    replace: bool = True,
                    extra: Mapping[str, Mapping[str, pa.Array | np.ndarray | Sequence[Any]]] | None = None,
                    ) -> dict[str, int]:
        """Create (or replace) several dataset tables in one transaction: all of them or none.

        The Arrow tables are built before the store is opened, so the write lock
        is held only while DuckDB copies them.

        Parameters
        ----------
        datasets : mapping of table name to (images, labels, ids or None)
        replace : bool, default=True
        extra : mapping of table name to {column: values}, optional
            More columns of a table after ``id``, ``label`` and ``pixels``, one
            value per row: numpy arrays keep their type (int32 is ``INTEGER``),
            lists of str become ``VARCHAR`` (the ``unipen`` import's ``writer``
            and ``strokes``).
        """
        tables = {}
        for name, (images, labels, ids) in datasets.items():
            check_name(name)
            flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), 784)
            if len(labels) != len(flat):
                raise ValueError(f"{len(flat)} images but {len(labels)} labels")
            row_ids = np.arange(len(flat), dtype=np.int32) if ids is None else np.asarray(ids, dtype=np.int32)
            columns: dict[str, pa.Array] = {
                "id": pa.array(row_ids),
                "label": pa.array(np.asarray(labels, dtype=np.uint8)),
                "pixels": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), 784),
            }
            for column, values in (extra or {}).get(name, {}).items():
                check_name(column)
                if column in columns:
                    raise ValueError(f"the extra column {column!r} is one of id, label, pixels")
                arr = values if isinstance(values, pa.Array) else pa.array(values)
                if len(arr) != len(flat):
                    raise ValueError(f"{len(flat)} images but {len(arr)} values of column {column!r}")
                columns[column] = arr
            tables[name] = pa.table(columns)
        with self.transaction() as con:
            if not replace:
                existing = set(self._tables(con))
                taken = [n for n in tables if n in existing]
                if taken:
                    raise UserError(f"the store already has a table {taken[0]!r}; pass --replace to replace it "
                                    "(or import under another --name)")
            for name, tbl in tables.items():
                con.register("_incoming", tbl)
                verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
                con.execute(f'{verb} "{name}" AS SELECT * FROM _incoming ORDER BY id')
                con.unregister("_incoming")
        return {name: int(tbl.num_rows) for name, tbl in tables.items()}

    @staticmethod
    def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
        rows = con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name IN ('id','label','pixels') "
            "GROUP BY table_name HAVING count(*) = 3 ORDER BY table_name").fetchall()
        return [r[0] for r in rows]

    def tables(self) -> list[str]:
        """Names of the dataset tables (those with id, label and pixels columns)."""
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            return self._tables(con)

    def load(self, name: str, where: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read a dataset table, optionally filtered by an SQL condition (:func:`check_where`).

        Returns
        -------
        images : ndarray of uint8, shape (n, 28, 28)
        labels : ndarray of int64, shape (n,)
        ids : ndarray of int64, shape (n,)
        """
        check_name(name)
        if where:
            check_where(where)
        if not self.path.exists():
            raise NotFoundError(f"no dataset table {name!r}: the store {self.path} is empty "
                                "(import with 'digitlab data import')")
        sql = f'SELECT id, label, pixels FROM "{name}"' + (f" WHERE ({where})" if where else "") + " ORDER BY id"
        with self.connect(read_only=True, config=SEALED_CONFIG) as con:
            known = self._tables(con)
            if name not in known:
                raise NotFoundError(f"no dataset table {name!r} in the store; known: {', '.join(known) or 'none'}"
                                    " (import with 'digitlab data import')")
            try:
                tbl = con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                raise UserError(f"bad --where condition {where!r}: {first_line(exc)}") from None
        pixels = tbl.column("pixels").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        images = np.asarray(pixels, dtype=np.uint8).reshape(-1, 28, 28)
        labels = tbl.column("label").to_numpy(zero_copy_only=False).astype(np.int64)
        ids = tbl.column("id").to_numpy(zero_copy_only=False).astype(np.int64)
        return images, labels, ids

    def columns(self, name: str) -> list[str]:
        """The columns of dataset table ``name``, in order (``id``, ``label``, ``pixels`` and any others).

        Raises
        ------
        NotFoundError
            No such dataset table.
        """
        check_name(name)
        with self.connect(read_only=True) as con:
            return self._columns(con, name)

    def _columns(self, con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
        known = self._tables(con)
        if name not in known:
            raise NotFoundError(f"no dataset table {name!r} in the store; known: {', '.join(known) or 'none'}"
                                " (import with 'digitlab data import')")
        rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                           "ORDER BY ordinal_position", [name]).fetchall()
        return [r[0] for r in rows]

    def load_column(self, name: str, column: str, where: str | None = None) -> tuple[np.ndarray, list[Any]]:
        """One column of a dataset table's rows, in the order of :meth:`load` (by ``id``), with their ids.

        Parameters
        ----------
        name : str
            A dataset table.
        column : str
            One of its columns (:meth:`columns`).
        where : str, optional
            The SQL condition of :meth:`load`.

        Returns
        -------
        ids : ndarray of int64, shape (n,)
        values : list of n Python values (None for SQL NULL)

        Raises
        ------
        NotFoundError
            No such table.
        UserError
            No such column (the message lists the table's columns), or a bad ``where``.
        """
        check_name(name)
        if where:
            check_where(where)
        if not self.path.exists():
            raise NotFoundError(f"no dataset table {name!r}: the store {self.path} is empty "
                                "(import with 'digitlab data import')")
        with self.connect(read_only=True, config=SEALED_CONFIG) as con:
            cols = self._columns(con, name)
            if column not in cols:
                raise UserError(f"the table {name!r} has no column {column!r}; its columns: {', '.join(cols)}")
            sql = (f'SELECT id, "{column}" FROM "{name}"' + (f" WHERE ({where})" if where else "")
                   + " ORDER BY id")
            try:
                tbl = con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                raise UserError(f"bad --where condition {where!r}: {first_line(exc)}") from None
        ids = tbl.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return ids, tbl.column(1).to_pylist()

    # ------------------------------------------------------------------ SQL

    def query(self, sql: str, params: Sequence[object] | None = None, *, write: bool = False,
              allow_extensions: bool = False) -> QueryResult:
        """Run SQL and return the last statement's result.

        Parameters
        ----------
        sql : str
            One or more statements separated by ``;``.
        params : sequence, optional
            Values of ``?`` placeholders (one statement only).
        write : bool, default=False
            Open the store read-write (``digitlab sql --write``); read-only
            otherwise, so ``DROP``, ``INSERT`` and the like are refused.
        allow_extensions : bool, default=False
            Allow ``INSTALL`` and ``LOAD`` of DuckDB extensions, and their
            automatic loading.

        Raises
        ------
        UserError
            DuckDB rejects the SQL (its message, hints kept), a change on a
            read-only store, or an extension without ``allow_extensions``.
        """
        config: _Config = {} if allow_extensions else dict(_SAFE)
        # Reading a store that does not exist yet reads an empty database: `SELECT 42` or `FROM range(3)` work
        # before any import, and a query naming a table says it is missing.
        opened = (self.connect(read_only=not write, config=config) if write or self.path.exists()
                  else contextlib.closing(duckdb.connect(":memory:", config=config)))
        with opened as con:
            try:
                statements = con.extract_statements(sql)
                if not statements:
                    raise UserError("SQL error: no statement given")
                if not allow_extensions and any(s.type == duckdb.StatementType.LOAD for s in statements):
                    raise UserError("SQL error: INSTALL and LOAD of DuckDB extensions are off; "
                                    "'digitlab sql --allow-extensions' allows them")
                if params and len(statements) > 1:
                    raise UserError("SQL error: parameters need exactly one statement")
                if write:
                    self._apply_pending(con)
                for stmt in statements[:-1]:
                    con.execute(stmt)
                table = self._run_last(con, statements[-1], params)
            except duckdb.Error as exc:
                message = first_line(exc)
                if not write and "read-only mode" in message:
                    message += " (the store opens read-only; 'digitlab sql --write' allows changes)"
                if not self.path.exists() and "Catalog Error" in message:
                    message += " (the store holds no tables yet; import a dataset first: 'digitlab data import mnist')"
                raise UserError(f"SQL error: {message}") from None
        return QueryResult(list(table.column_names), table)

    @staticmethod
    def _run_last(con: duckdb.DuckDBPyConnection, stmt: duckdb.Statement,
                  params: Sequence[object] | None) -> pa.Table:
        """The result of the last statement, as Arrow: a query straight from DuckDB, other statements' counts."""
        if stmt.type == duckdb.StatementType.SELECT:
            return con.sql(stmt.query, params=list(params) if params else None).to_arrow_table()
        cur = con.execute(stmt, list(params) if params else None)
        if not cur.description:
            return pa.table({})
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

