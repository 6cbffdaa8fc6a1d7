"""Training, evaluation, cross-validation and learning-curve runs recorded in the store, as MLflow users expect.

Two tables live beside the datasets in the DuckDB store:

``runs``
    one row per run: ``run`` (id), ``kind`` (train, evaluate, cv, curve),
    ``model_name`` and ``model_version`` (the saved model, ``models/NAME/vN``),
    ``model_type``, ``params`` (JSON), ``dataset``, ``where_clause``,
    ``train_size`` (images trained on), ``sample`` (the stratified sample asked
    for), ``seed``, ``data_sha256`` (of the training images and labels),
    ``git_commit`` (of the working directory's repository, when there is one),
    ``environment`` (JSON: digitlab, Python, NumPy and torch versions, cores),
    ``train_seconds``, ``duration_seconds`` (the whole run), ``accuracy``,
    ``metrics`` (JSON), ``epochs`` (JSON: per-epoch metrics, for the CNN),
    ``artifacts`` (JSON: model folder and version, report, plots) and ``created``.
``predictions``
    one row per evaluated image: ``run``, ``id``, ``actual``, ``predicted``,
    ``probability`` (of the predicted class), so
    ``SELECT actual, predicted, count(*) FROM predictions WHERE run = '...' GROUP BY ALL``
    is the confusion matrix.

Stores written by an older digitlab get the new columns on the next record
(``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``); their old runs read back with
those fields empty.

Run ids are ``KIND-DATE-TIME-HEX``; :func:`short_ids` gives each the shortest
prefix of its random ``HEX`` part (4 characters at least) that no other run
shares, as git abbreviates commits, and :func:`get_run` accepts it, a unique
prefix of the whole id, the whole id, or ``latest`` and ``latest~N`` (the newest
run, and the one N runs before it). :func:`export_mlflow` writes the runs
as an MLflow file store.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from digitlab._json import to_jsonable
from digitlab.errors import NotFoundError, UserError
from digitlab.store import PendingWrite, Store

__all__ = ["ExportResult", "Run", "Runs", "environment", "export_mlflow", "get_run", "git_commit", "list_runs",
           "new_run_id", "record_run", "short_ids", "stage_run"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, model_name VARCHAR, model_type VARCHAR,
        params JSON, dataset VARCHAR, where_clause VARCHAR, train_seconds DOUBLE, accuracy DOUBLE,
        metrics JSON, created TIMESTAMP)""",
    # added by issue 17; ALTER so that older stores gain them too
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS model_version INTEGER",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS train_size BIGINT",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS sample BIGINT",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS seed BIGINT",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS data_sha256 VARCHAR",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS git_commit VARCHAR",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS environment JSON",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS duration_seconds DOUBLE",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS epochs JSON",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS artifacts JSON",
    """CREATE TABLE IF NOT EXISTS predictions (
        run VARCHAR NOT NULL, id BIGINT, actual INTEGER, predicted INTEGER, probability DOUBLE)""",
]
_COLUMNS = ["run", "kind", "model_name", "model_version", "model_type", "params", "dataset", "where_clause",
            "train_size", "sample", "seed", "data_sha256", "git_commit", "environment", "train_seconds",
            "duration_seconds", "accuracy", "metrics", "epochs", "artifacts", "created"]
_JSON_COLUMNS = {"params": dict, "environment": dict, "metrics": dict, "epochs": list, "artifacts": dict}
#: Characters of the random part a short id keeps at least.
SHORT_MIN = 4


@dataclass(frozen=True)
class Run:
    """One row of the ``runs`` table (the JSON columns decoded; fields an older store lacks are None or empty)."""

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
    model_version: int | None = None
    train_size: int | None = None
    sample: int | None = None
    seed: int | None = None
    data_sha256: str | None = None
    git_commit: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @property
    def model_ref(self) -> str | None:
        """``NAME@vN`` of the saved model this run made or measured (``NAME`` when unversioned), or None."""
        if self.model_name is None:
            return None
        return f"{self.model_name}@v{self.model_version}" if self.model_version is not None else self.model_name

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
    """A fresh, sortable run id such as ``train-20261122-001512-3fa29c1d``."""
    return f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def environment() -> dict[str, Any]:
    """Where a run ran: digitlab, Python, NumPy and torch versions (torch only if installed), cores, platform.

    torch's version is read from its package metadata, so recording it never imports torch.
    """
    from digitlab import __version__

    env: dict[str, Any] = {"digitlab": __version__, "python": platform.python_version(), "numpy": np.__version__}
    try:
        env["torch"] = metadata.version("torch")
    except metadata.PackageNotFoundError:
        env["torch"] = None
    env["cores"] = os.cpu_count()
    env["platform"] = platform.platform()
    return env


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The commit checked out in the git repository holding ``cwd`` (default: the working directory), or None.

    None when there is no repository, no commit yet or no ``git`` program: a
    run is recorded all the same. ``-dirty`` is appended when tracked files have
    uncommitted changes.
    """
    where = os.fspath(cwd) if cwd is not None else None
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=5, check=False)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _json(v: Any) -> str:
    return json.dumps(to_jsonable(v))


_RUN_SCHEMA = pa.schema([
    ("run", pa.string()), ("kind", pa.string()), ("model_name", pa.string()), ("model_version", pa.int32()),
    ("model_type", pa.string()), ("params", pa.string()), ("dataset", pa.string()), ("where_clause", pa.string()),
    ("train_size", pa.int64()), ("sample", pa.int64()), ("seed", pa.int64()), ("data_sha256", pa.string()),
    ("git_commit", pa.string()), ("environment", pa.string()), ("train_seconds", pa.float64()),
    ("duration_seconds", pa.float64()), ("accuracy", pa.float64()), ("metrics", pa.string()),
    ("epochs", pa.string()), ("artifacts", pa.string()), ("created", pa.timestamp("us"))])


def _run_tables(*, run: str, kind: str, model_name: str | None, model_type: str | None, params: dict[str, Any],
                dataset: str | None, where: str | None, train_seconds: float | None, accuracy: float | None,
                metrics: dict[str, Any], ids: np.ndarray | None = None, actual: np.ndarray | None = None,
                predicted: np.ndarray | None = None, probability: np.ndarray | None = None,
                model_version: int | None = None, train_size: int | None = None, sample: int | None = None,
                seed: int | None = None, data_sha256: str | None = None, git: str | None = None,
                env: Mapping[str, Any] | None = None, duration_seconds: float | None = None,
                epochs: list[dict[str, Any]] | None = None,
                artifacts: Mapping[str, Any] | None = None) -> dict[str, pa.Table]:
    """The rows a run adds: one in ``runs`` and, with predictions, one per image in ``predictions``."""
    row: dict[str, Any] = {
        "run": run, "kind": kind, "model_name": model_name, "model_version": model_version,
        "model_type": model_type, "params": _json(params), "dataset": dataset, "where_clause": where,
        "train_size": train_size, "sample": sample, "seed": seed, "data_sha256": data_sha256, "git_commit": git,
        "environment": _json(environment() if env is None else env),
        "train_seconds": None if train_seconds is None else float(train_seconds),
        "duration_seconds": None if duration_seconds is None else float(duration_seconds),
        "accuracy": None if accuracy is None else float(accuracy), "metrics": _json(metrics),
        "epochs": _json(epochs or []), "artifacts": _json(artifacts or {}),
        "created": datetime.now(UTC).replace(tzinfo=None),
    }
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
    """Write a run (the arguments of :func:`record_run`) beside the store without touching the database.

    ``train`` stages its run before it saves the model and applies it after
    (:meth:`Store.flush`), so a busy store never leaves a model without its
    run: the staged run is recorded by the next write to the store.
    """
    return store.stage(_run_tables(run=run, **fields), _SCHEMA)


def record_run(store: Store, *, run: str, **fields: Any) -> str:
    """Insert a run and (optionally) its per-image predictions in one transaction, never losing them.

    The rows are staged beside the store first (:meth:`Store.append`): when
    another process holds the store longer than its timeout they wait there,
    listed by :func:`list_runs`, and the next write records them.

    Parameters
    ----------
    run : str
    **fields
        ``kind``, ``model_name``, ``model_type``, ``params``, ``dataset``,
        ``where``, ``train_seconds``, ``accuracy``, ``metrics`` (required), and
        optionally ``ids``, ``actual``, ``predicted``, ``probability`` (ndarrays
        of shape (n,): the evaluated images' ids, true and predicted labels,
        and the probability given to the predicted label), ``model_version``,
        ``train_size``, ``sample``, ``seed``, ``data_sha256``, ``git``, ``env``,
        ``duration_seconds``, ``epochs``, ``artifacts``.

    Returns
    -------
    str
        The run id.

    Raises
    ------
    DigitlabError
        The run cannot be recorded (its id is taken).
    """
    store.flush(stage_run(store, run=run, **fields))
    return run


def _row_to_run(row: Mapping[str, Any]) -> Run:
    d: dict[str, Any] = {c: row.get(c) for c in _COLUMNS}
    for name, kind in _JSON_COLUMNS.items():
        d[name] = json.loads(d[name]) if d[name] else kind()
    return Run(**d)


def _run_columns(store: Store) -> list[str] | None:
    """The columns the store's ``runs`` table has (an older store lacks some), or None without the table."""
    if not store.path.exists():
        return None
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'").fetchall()
    return [r[0] for r in rows] or None


def _select(store: Store, condition: str = "", args: list[Any] | None = None,
            tail: str = "") -> list[Run]:
    have = _run_columns(store)
    if have is None:
        return []
    cols = [c for c in _COLUMNS if c in have]
    sql = f"SELECT {', '.join(cols)} FROM runs" + (f" WHERE {condition}" if condition else "") + tail
    with store.connect(read_only=True) as con:
        rows = con.execute(sql, args or []).fetchall()
    return [_row_to_run(dict(zip(cols, r, strict=True))) for r in rows]


def _staged_runs(store: Store) -> list[Run]:
    """Runs staged beside a busy store and not recorded yet (they are, by the next write)."""
    tbl = store.pending_rows("runs")
    if tbl is None:
        return []
    return [_row_to_run({c: r.get(c) for c in _COLUMNS}) for r in tbl.to_pylist()]


def list_runs(store: Store, model: str | None = None, limit: int | None = None) -> Runs:
    """Recorded runs, newest first, optionally only those of model type or name ``model``.

    Runs staged while the store was busy are listed too.
    """
    tail = " ORDER BY created DESC, run DESC" + (f" LIMIT {int(limit)}" if limit else "")
    if model:
        recorded = _select(store, "model_type = ? OR model_name = ?", [model, model], tail)
    else:
        recorded = _select(store, tail=tail)
    staged = [r for r in _staged_runs(store) if not model or model in (r.model_type, r.model_name)]
    if not staged:
        return Runs(recorded)
    known = {r.run for r in recorded}
    runs = sorted(recorded + [r for r in staged if r.run not in known], key=lambda r: (r.created, r.run),
                  reverse=True)
    return Runs(runs[:limit] if limit else runs)


def _all_ids(store: Store) -> list[str]:
    staged = [r.run for r in _staged_runs(store)]
    if _run_columns(store) is None:
        return staged
    with store.connect(read_only=True) as con:
        recorded = [r[0] for r in con.execute("SELECT run FROM runs").fetchall()]
    return recorded + [r for r in staged if r not in set(recorded)]


def _random_part(run: str) -> str:
    return run.rsplit("-", 1)[-1].lower()


def short_ids(store_or_ids: Store | list[str]) -> dict[str, str]:
    """Each run's short id: the shortest prefix (at least :data:`SHORT_MIN` characters) of its random part
    that no other run's random part starts with; the whole id when two runs share the random part.

    Parameters
    ----------
    store_or_ids : Store or list of str
        The store (all its runs count), or the run ids.
    """
    ids = _all_ids(store_or_ids) if isinstance(store_or_ids, Store) else list(store_or_ids)
    parts = {r: _random_part(r) for r in ids}
    ordered = sorted(set(parts.values()))
    out: dict[str, str] = {}
    for run, part in parts.items():
        i = ordered.index(part)
        common = 0
        for j in (i - 1, i + 1):  # only the sorted neighbours can share a longer prefix
            if 0 <= j < len(ordered):
                other = ordered[j]
                k = 0
                while k < min(len(part), len(other)) and part[k] == other[k]:
                    k += 1
                common = max(common, k)
        shared = sum(1 for p in parts.values() if p == part) > 1
        out[run] = run if shared or common >= len(part) else part[: max(SHORT_MIN, common + 1)]
    return out


_LATEST = re.compile(r"^latest(?:~([0-9]+))?$")


def get_run(store: Store, run: str) -> Run:
    """The run named ``run``: its whole id, a unique prefix of it, its short id (a prefix of its random part),
    or ``latest`` / ``latest~N`` (the newest run, the one N runs before it).

    Raises
    ------
    NotFoundError
        No run, or an ambiguous prefix (the message lists some of the runs it matches).
    """
    want = run.strip()
    back = _LATEST.match(want)
    if back:
        n = int(back.group(1) or 0)
        found = list_runs(store, limit=n + 1)
        if len(found) <= n:
            raise NotFoundError(f"no run {run!r}: {len(found)} run(s) recorded; list them with 'digitlab runs'")
        return found[n]
    ids = _all_ids(store)
    matches = [r for r in ids if r == want]
    if not matches:
        matches = sorted({r for r in ids if r.startswith(want)
                          or (len(want) >= SHORT_MIN and _random_part(r).startswith(want.lower()))})
    if not matches:
        raise NotFoundError(f"no run {run!r}; list them with 'digitlab runs'")
    if len(matches) > 1:
        shorts = short_ids(ids)
        raise NotFoundError(f"run {run!r} is ambiguous: it matches {', '.join(shorts[m] for m in matches[:5])}"
                            + (f" and {len(matches) - 5} more" if len(matches) > 5 else ""))
    hit = _select(store, "run = ?", [matches[0]])
    return hit[0] if hit else next(r for r in _staged_runs(store) if r.run == matches[0])


# ------------------------------------------------------------------------------------------- MLflow


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_mlflow` wrote.

    Attributes
    ----------
    path : Path
        The MLflow file store (``mlflow ui --backend-store-uri PATH``).
    experiment_id : str
    exported, skipped : tuple of str
        digitlab run ids written now, and those already in the store from an earlier export.
    """

    path: Path
    experiment_id: str
    exported: tuple[str, ...]
    skipped: tuple[str, ...]


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    """MLflow 3 refuses its file store unless ``MLFLOW_ALLOW_FILE_STORE`` is true: allow it for the export only."""
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def _numbers(prefix: str, value: Any, out: dict[str, float]) -> None:
    """Flatten the numeric leaves of ``value`` into ``out`` as MLflow metric names (``per_class.3.f1``)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)) and np.isfinite(value):
        out[prefix] = float(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _numbers(f"{prefix}.{k}" if prefix else str(k), v, out)


def _mlflow_metrics(r: Run) -> dict[str, float]:
    """The run's numeric metrics for MLflow: summary numbers and per-class ones; folds and curves are steps."""
    out: dict[str, float] = {}
    shown = {k: v for k, v in r.metrics.items() if k not in ("confusion", "classes", "folds", "points")}
    _numbers("", shown, out)
    for name in ("train_seconds", "duration_seconds"):
        value = getattr(r, name)
        if value is not None:
            out[name] = float(value)
    return out


def _mlflow_param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(to_jsonable(value))
    return text[:6000]  # MLflow's limit on a parameter value


def export_mlflow(store: Store, directory: str | os.PathLike[str], *, experiment: str = "digitlab") -> ExportResult:
    """Write the store's runs into an MLflow file store at ``directory``, so that ``mlflow ui`` browses them.

    Each digitlab run becomes an MLflow run of experiment ``experiment``, named
    by its short id: parameters (the model's, and ``train_size``, ``sample``,
    ``seed``, ``dataset``, ``where``), metrics (summary and per-class numbers;
    the CNN's epochs, a cross-validation's folds and a learning curve's sizes as
    steps), tags (``digitlab.run``, kind, model, data checksum, environment,
    ``mlflow.source.git.commit``, links to the model folder, report and plots),
    and the whole record as the artifact ``digitlab_run.json``. Exporting again
    into the same folder adds only the runs not exported yet.

    Raises
    ------
    UserError
        The ``mlflow`` package is not installed (``pip install 'digitlab[mlflow]'``).
    """
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("exporting to MLflow needs the mlflow package: pip install 'digitlab[mlflow]'") from None

    root = Path(directory).expanduser().resolve()
    runs = sorted(list_runs(store), key=lambda r: (r.created, r.run))
    shorts = short_ids([r.run for r in runs])
    exported: list[str] = []
    skipped: list[str] = []
    with _file_store_allowed():
        client = MlflowClient(tracking_uri=root.as_uri())
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        done = {r.data.tags.get("digitlab.run") for r in client.search_runs([exp_id], max_results=50000)}
        for r in runs:
            if r.run in done:
                skipped.append(r.run)
                continue
            start = int(r.created.replace(tzinfo=UTC).timestamp() * 1000)
            end = start + int(1000 * (r.duration_seconds or r.train_seconds or 0))
            tags = {"mlflow.runName": shorts[r.run], "digitlab.run": r.run, "digitlab.kind": r.kind,
                    "digitlab.model_type": r.model_type, "digitlab.model": r.model_ref,
                    "digitlab.data_sha256": r.data_sha256, "mlflow.source.git.commit": r.git_commit,
                    **{f"digitlab.env.{k}": v for k, v in r.environment.items()},
                    **{f"digitlab.artifact.{k}": v for k, v in r.artifacts.items()}}
            created = client.create_run(exp_id, start_time=start, run_name=shorts[r.run])
            rid = created.info.run_id
            params = {**{k: v for k, v in r.params.items() if v is not None},
                      **{k: v for k, v in (("train_size", r.train_size), ("sample", r.sample), ("seed", r.seed),
                                            ("dataset", r.dataset), ("where", r.where_clause)) if v is not None}}
            metrics = [Metric(k, v, end, 0) for k, v in _mlflow_metrics(r).items()]
            for e in r.epochs:
                step = int(e.get("epoch", 0))
                metrics += [Metric(f"epoch_{k}", float(v), end, step) for k, v in e.items()
                            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
            for i, fold in enumerate(r.metrics.get("folds", [])):
                metrics += [Metric(f"fold_{k}", float(v), end, i + 1) for k, v in fold.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)]
            for p in r.metrics.get("points", []):
                metrics += [Metric(f"curve_{k}", float(v), end, int(p["size"])) for k, v in p.items()
                            if k != "size" and isinstance(v, (int, float))]
            client.log_batch(rid, params=[Param(k, _mlflow_param(v)) for k, v in params.items()],
                             tags=[RunTag(k, str(v)) for k, v in tags.items() if v is not None])
            for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a batch
                client.log_batch(rid, metrics=metrics[i:i + 1000])
            client.log_text(rid, json.dumps(to_jsonable(r.as_dict()), indent=2), "digitlab_run.json")
            client.set_terminated(rid, end_time=end)
            exported.append(r.run)
    return ExportResult(path=root, experiment_id=str(exp_id), exported=tuple(exported), skipped=tuple(skipped))
