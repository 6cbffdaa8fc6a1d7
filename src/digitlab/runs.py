"""Training, evaluation and cross-validation runs recorded in the store.

Two tables live beside the datasets in the DuckDB store:

``runs``
    one row per run: ``run`` (id), ``kind`` (train, evaluate, cv),
    ``model_name``, ``model_type``, ``params`` (JSON), ``dataset``,
    ``where_clause``, ``train_seconds``, ``accuracy``, ``metrics`` (JSON), ``created``.
``predictions``
    one row per evaluated image: ``run``, ``id``, ``actual``, ``predicted``,
    ``probability`` (of the predicted class), so
    ``SELECT actual, predicted, count(*) FROM predictions WHERE run = '...' GROUP BY ALL``
    is the confusion matrix.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from digitlab._json import to_jsonable
from digitlab.errors import NotFoundError
from digitlab.store import PendingWrite, Store

__all__ = ["Run", "Runs", "get_run", "list_runs", "new_run_id", "record_run", "stage_run"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, model_name VARCHAR, model_type VARCHAR,
        params JSON, dataset VARCHAR, where_clause VARCHAR, train_seconds DOUBLE, accuracy DOUBLE,
        metrics JSON, created TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS predictions (
        run VARCHAR NOT NULL, id BIGINT, actual INTEGER, predicted INTEGER, probability DOUBLE)""",
]
_COLUMNS = ["run", "kind", "model_name", "model_type", "params", "dataset", "where_clause", "train_seconds",
            "accuracy", "metrics", "created"]


@dataclass(frozen=True)
class Run:
    """One row of the ``runs`` table (``params`` and ``metrics`` decoded)."""

    run: str
    kind: str
    model_name: str | None
    model_type: str | None
    params: dict[str, Any]
    dataset: str | None
    where_clause: str | None
    train_seconds: float | None
    accuracy: float | None
    metrics: dict[str, Any]
    created: datetime

    def as_dict(self) -> dict[str, Any]:
        """The run as a JSON-able dict."""
        return {c: getattr(self, c) for c in _COLUMNS}

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import run_html
        return run_html(self)


class Runs(list[Run]):
    """Runs as :func:`list_runs` returns them: a list that shows itself as a table in a notebook."""

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import runs_html
        return runs_html(self)


def new_run_id(kind: str) -> str:
    """A fresh, sortable run id such as ``train-20261122-001512-3fa2``."""
    return f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _json(v: Any) -> str:
    return json.dumps(to_jsonable(v))


_RUN_SCHEMA = pa.schema([("run", pa.string()), ("kind", pa.string()), ("model_name", pa.string()),
                         ("model_type", pa.string()), ("params", pa.string()), ("dataset", pa.string()),
                         ("where_clause", pa.string()), ("train_seconds", pa.float64()), ("accuracy", pa.float64()),
                         ("metrics", pa.string()), ("created", pa.timestamp("us"))])


def _run_tables(*, run: str, kind: str, model_name: str | None, model_type: str | None, params: dict[str, Any],
                dataset: str | None, where: str | None, train_seconds: float | None, accuracy: float | None,
                metrics: dict[str, Any], ids: np.ndarray | None = None, actual: np.ndarray | None = None,
                predicted: np.ndarray | None = None, probability: np.ndarray | None = None) -> dict[str, pa.Table]:
    """The rows a run adds: one in ``runs`` and, with predictions, one per image in ``predictions``."""
    row = {"run": run, "kind": kind, "model_name": model_name, "model_type": model_type, "params": _json(params),
           "dataset": dataset, "where_clause": where,
           "train_seconds": None if train_seconds is None else float(train_seconds),
           "accuracy": None if accuracy is None else float(accuracy), "metrics": _json(metrics),
           "created": datetime.now(UTC).replace(tzinfo=None)}
    tables = {"runs": pa.Table.from_pylist([row], schema=_RUN_SCHEMA)}
    if ids is not None and actual is not None and predicted is not None:
        n = len(ids)
        tables["predictions"] = pa.table({
            "run": pa.array([run] * n, pa.string()),
            "id": pa.array(np.asarray(ids, dtype=np.int64)),
            "actual": pa.array(np.asarray(actual, dtype=np.int32)),
            "predicted": pa.array(np.asarray(predicted, dtype=np.int32)),
            "probability": pa.array(np.full(n, np.nan) if probability is None
                                    else np.asarray(probability, dtype=np.float64)),
        })
    return tables


def stage_run(store: Store, *, run: str, **fields: Any) -> PendingWrite:
    """Write a run (arguments of :func:`record_run`) beside the store without touching the database.

    ``train`` stages its run before it saves the model and applies it after
    (:meth:`Store.flush`), so a busy store never leaves a model without its
    run: the staged run is recorded by the next write to the store.
    """
    return store.stage(_run_tables(run=run, **fields), _SCHEMA)


def record_run(store: Store, *, run: str, kind: str, model_name: str | None, model_type: str | None,
               params: dict[str, Any], dataset: str | None, where: str | None, train_seconds: float | None,
               accuracy: float | None, metrics: dict[str, Any], ids: np.ndarray | None = None,
               actual: np.ndarray | None = None, predicted: np.ndarray | None = None,
               probability: np.ndarray | None = None) -> str:
    """Insert a run and (optionally) its per-image predictions in one transaction, never losing them.

    The rows are staged beside the store first (:meth:`Store.append`): when
    another process holds the store longer than its timeout they wait there,
    listed by :func:`list_runs`, and the next write records them.

    Parameters
    ----------
    ids, actual, predicted, probability : ndarray of shape (n,), optional
        The evaluated images' ids, true and predicted labels, and the
        probability given to the predicted label.

    Returns
    -------
    str
        The run id.

    Raises
    ------
    DigitlabError
        The run cannot be recorded (its id is taken).
    """
    write = stage_run(store, run=run, kind=kind, model_name=model_name, model_type=model_type, params=params,
                      dataset=dataset, where=where, train_seconds=train_seconds, accuracy=accuracy,
                      metrics=metrics, ids=ids, actual=actual, predicted=predicted, probability=probability)
    store.flush(write)
    return run


def _row_to_run(row: tuple[Any, ...]) -> Run:
    d = dict(zip(_COLUMNS, row, strict=True))
    d["params"] = json.loads(d["params"]) if d["params"] else {}
    d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else {}
    return Run(**d)


def _has_runs(store: Store) -> bool:
    if not store.path.exists():
        return False
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'").fetchone()
    return bool(row and row[0])


def _staged_runs(store: Store) -> list[Run]:
    """Runs staged beside a busy store and not recorded yet (they are, by the next write)."""
    tbl = store.pending_rows("runs")
    if tbl is None:
        return []
    return [_row_to_run(tuple(r.get(c) for c in _COLUMNS)) for r in tbl.to_pylist()]


def _newest_first(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (r.created, r.run), reverse=True)


def list_runs(store: Store, model: str | None = None, limit: int | None = None) -> Runs:
    """Recorded runs, newest first, optionally only those of model type ``model``.

    Runs staged while the store was busy are listed too.
    """
    staged = [r for r in _staged_runs(store) if not model or model in (r.model_type, r.model_name)]
    recorded: list[Run] = []
    if _has_runs(store):
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        args: list[str] = []
        if model:
            sql += " WHERE model_type = ? OR model_name = ?"
            args = [model, model]
        sql += " ORDER BY created DESC, run DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with store.connect(read_only=True) as con:
            recorded = [_row_to_run(r) for r in con.execute(sql, args).fetchall()]
    if not staged:
        return Runs(recorded)
    known = {r.run for r in recorded}
    runs = _newest_first(recorded + [r for r in staged if r.run not in known])
    return Runs(runs[:limit] if limit else runs)


def get_run(store: Store, run: str) -> Run:
    """The run with id ``run`` (a unique prefix is enough).

    Raises
    ------
    NotFoundError
        No run, or an ambiguous prefix.
    """
    rows: list[tuple[Any, ...]] = []
    if _has_runs(store):
        with store.connect(read_only=True) as con:
            rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE run = ? OR starts_with(run, ?)",
                               [run, run]).fetchall()
    found = {r[0]: _row_to_run(r) for r in rows}
    for staged in _staged_runs(store):
        if staged.run.startswith(run):
            found.setdefault(staged.run, staged)
    if run in found:
        return found[run]
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise NotFoundError(f"no run {run!r}; list them with 'digitlab runs'")
    raise NotFoundError(f"run prefix {run!r} is ambiguous: {', '.join(sorted(found)[:5])}")
