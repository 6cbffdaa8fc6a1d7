"""Batch scoring: a saved model over millions of images, streamed, resumable, on one machine or a Ray cluster.

``digitlab score MODEL SOURCE --out OUT.parquet`` is :func:`score`::

    from digitlab.score import ScoreSpec, score

    result = score(ScoreSpec(model="default", source="scans/", out="digits.parquet"))
    result.images, result.errors, result.images_per_second

How it runs
-----------
1. The source is cut into partitions (:func:`digitlab.sources.plan_source`): whole Parquet row groups, row
   ranges, chunks of image files. Each partition becomes one output file, ``OUT/part-NNNNN.parquet``.
2. Workers (:class:`Scorer`: the model loaded once per worker) read their partitions a batch at a time, score
   each batch and send the small result rows (id, digit, probabilities, error) back. The engine decides where
   the workers are: ``local`` runs worker processes on this machine (:mod:`digitlab.engines.local`), ``ray``
   runs a pool of Ray actors fed by Ray Data (:mod:`digitlab.engines.ray_engine`).
3. The caller's process writes each batch as a Parquet row group into a hidden temporary file of its partition
   and, once the partition holds every one of its rows, renames it into place (:class:`OutputFolder`). The
   rename is the commit: a partition file is whole or absent, never partial.

So memory stays flat (a few batches in flight per worker), OUT grows as partitions finish, and a killed run
resumes: the same command finds the committed partitions (``OUT/_digitlab_score.json`` records the model and
the plan they belong to), deletes leftover temporary files and scores only the rest. A row delivered twice (a
Ray task retried after a worker died) is written once.

Output columns: the input's id (its id column, ``id`` = the row number when there is none, ``path`` for image
files), ``digit``, ``probabilities`` (one float32 per class of the model), ``not_a_digit`` when the model can
tell (an estimator with a ``not_a_digit(X)`` method returning one bool per image), and ``error``: why the row's
image could not be scored (``digit`` and ``probabilities`` are then null), else null.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from digitlab._io import atomic_write_text
from digitlab.errors import UserError
from digitlab.models.base import DigitClassifier, ProgressFn
from digitlab.settings import Settings, get_settings
from digitlab.sources import ID_KINDS, InputBatch, Partition, SourcePlan, plan_source

__all__ = ["MANIFEST", "OutputFolder", "ScoreResult", "ScoreSpec", "Scorer", "output_schema", "score"]

#: The run's manifest inside OUT: the model and the plan its partition files belong to.
MANIFEST = "_digitlab_score.json"
_FORMAT = 1
#: Columns the workers add for the writer: the partition and the row's position in it.
PARTITION, ROW = "_partition", "_row"


def _quiet(key: str, completed: float, total: float | None = None, **info: object) -> None:
    """A progress function that shows nothing."""


@dataclass(frozen=True)
class ScoreSpec:
    """What :func:`score` scores, where it writes and how it runs.

    Attributes
    ----------
    model : str
        A saved model's name (``default`` is the bundled CNN) or a model folder.
    source : str
        See :mod:`digitlab.sources`.
    out : path-like
        The output folder (``OUT.parquet/part-NNNNN.parquet``).
    engine : {"local", "ray"}
    address : str, optional
        Ray only: the cluster to join (``auto``: the one this machine belongs to; ``ray://host:10001``); default
        ``$RAY_ADDRESS``, else a Ray started on this machine for the run.
    batch_size : int, default=2048
        Rows read, scored and written (as one Parquet row group) at a time.
    partition_rows : int, default=50000
        At most this many rows per partition (and output file); a Parquet row group is never split.
    workers : int, optional
        Worker processes (local) or model actors (ray); default: every core (local), every CPU of the cluster
        (ray), never more than the partitions left.
    id_column : str, optional
        The id column of a Parquet source or table (default ``id`` when there is one, else the row number).
    overwrite : bool, default=False
        Start afresh: remove the partition files of an earlier run in ``out`` (of any model or source).
    """

    model: str
    source: str
    out: str | os.PathLike[str]
    engine: str = "local"
    address: str | None = None
    batch_size: int = 2048
    partition_rows: int = 50_000
    workers: int | None = None
    id_column: str | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score` did.

    Attributes
    ----------
    images : int
        Rows scored by this run (bad images included).
    errors : int
        Of those, rows whose image could not be scored.
    seconds : float
        Wall time of the scoring (planning and model loading excluded).
    images_per_second : float
    out : Path
    partitions : int
        Partitions of the source.
    skipped : int
        Partitions an earlier run had already written, left as they were.
    images_total, errors_total : int
        In the whole of ``out``, committed partitions of earlier runs included.
    startup_seconds : float
        From the start of the scoring to the first result row: the workers' (and Ray's) start and model loading.
    engine : str
    workers : int
    """

    images: int
    errors: int
    seconds: float
    images_per_second: float
    out: Path
    partitions: int
    skipped: int
    images_total: int
    errors_total: int
    engine: str
    workers: int
    startup_seconds: float = 0.0


# ----------------------------------------------------------------------------------------------- scorer


class Scorer:
    """A loaded model that turns :class:`~digitlab.sources.InputBatch` es into result rows.

    Parameters
    ----------
    folder : path-like
        The saved model.
    name : str
    id_kind : {"int", "str"}
    chunk : int, optional
        Predict at most this many images per call. Workers that share a machine pass 64: digitlab's CNN then
        predicts on one thread (:func:`digitlab.models.cnn._threads.inference_threads`), so N workers use N
        cores instead of fighting over them.
    """

    def __init__(self, folder: str | os.PathLike[str], name: str, id_kind: str = "int",
                 chunk: int | None = None) -> None:
        from digitlab.models.io import load_model

        loaded = load_model(folder, name=name)
        self.estimator: DigitClassifier = loaded.estimator
        self.classes = np.asarray(self.estimator.classes_)
        self.id_kind = id_kind
        self.chunk = chunk
        fn = getattr(self.estimator, "not_a_digit", None)
        self._not_a_digit: Callable[[np.ndarray], Any] | None = fn if callable(fn) else None
        if self._not_a_digit is None:  # the model folder's not-a-digit detector (digitlab novelty), if current
            from digitlab.novelty import load_detector

            detector = load_detector(folder, name)
            if detector is not None:
                self._not_a_digit = self._detector_flags(detector)
        self.schema = output_schema(id_kind, len(self.classes), self._not_a_digit is not None)

    def _detector_flags(self, detector: Any) -> Callable[[np.ndarray], Any]:
        """``not_a_digit`` by a detector that reads the model's scores (one more pass of the model)."""
        def flags(X: np.ndarray) -> Any:
            step = self.chunk or len(X)
            scores = np.concatenate([np.asarray(self.estimator.scores(X[a:a + step]), np.float64)
                                     for a in range(0, len(X), step)])
            return detector.flags(X, scores)

        return flags

    def score(self, batch: InputBatch) -> pa.RecordBatch:
        """The result rows of ``batch``: its partition and row positions, id, digit, probabilities, error."""
        n = len(batch)
        ok = np.array([e is None for e in batch.errors], dtype=bool)
        k = len(self.classes)
        proba = np.zeros((n, k), np.float32)
        digit = np.zeros(n, np.int64)
        flags = np.zeros(n, bool)
        rows = np.flatnonzero(ok)
        if len(rows):
            X = batch.pixels[rows]
            step = self.chunk or len(X)
            p = np.concatenate([np.asarray(self.estimator.predict_proba(X[a:a + step]), np.float64)
                                for a in range(0, len(X), step)])
            proba[rows] = p
            digit[rows] = self.classes[np.argmax(p, axis=1)].astype(np.int64)
            if self._not_a_digit is not None:
                flags[rows] = np.asarray(self._not_a_digit(X), dtype=bool)
        valid = ~ok  # mask: True where null
        cols: dict[str, pa.Array] = {
            PARTITION: pa.array(np.full(n, batch.partition, np.int32)),
            ROW: pa.array(np.arange(batch.offset, batch.offset + n, dtype=np.int32)),
            "id": batch.ids.cast(ID_KINDS[self.id_kind]),
            "digit": pa.array(digit, mask=valid),
            "probabilities": pa.FixedSizeListArray.from_arrays(pa.array(proba.reshape(-1)), k, mask=pa.array(valid)),
        }
        if self._not_a_digit is not None:
            cols["not_a_digit"] = pa.array(flags, mask=valid)
        cols["error"] = pa.array(batch.errors, pa.string())
        return pa.RecordBatch.from_arrays(list(cols.values()), schema=self.schema)


def output_schema(id_kind: str, n_classes: int, not_a_digit: bool) -> pa.Schema:
    """The workers' result rows: partition, row, id, digit, probabilities, [not_a_digit], error."""
    fields = [pa.field(PARTITION, pa.int32()), pa.field(ROW, pa.int32()), pa.field("id", ID_KINDS[id_kind]),
              pa.field("digit", pa.int64()), pa.field("probabilities", pa.list_(pa.float32(), n_classes))]
    if not_a_digit:
        fields.append(pa.field("not_a_digit", pa.bool_()))
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields)


# ------------------------------------------------------------------------------------------------ output


class _Open:
    """A partition being written: its temporary file and the rows it has."""

    def __init__(self, tmp: Path, writer: Any, rows: int) -> None:
        self.tmp = tmp
        self.writer = writer
        self.seen = np.zeros(rows, dtype=bool)
        self.count = 0
        self.errors = 0


class OutputFolder:
    """OUT: one Parquet file per partition, each committed by a rename once it holds all of its rows.

    Parameters
    ----------
    out : path-like
    plan : SourcePlan
    model : dict
        The model's identity (name, folder, checksum), recorded in the manifest.
    schema : pyarrow.Schema
        The workers' rows (:func:`output_schema`).
    overwrite : bool
        Remove an earlier run's files first.

    Raises
    ------
    UserError
        ``out`` is a file, a folder of other files, or the output of another model or source (without
        ``overwrite``).
    """

    def __init__(self, out: str | os.PathLike[str], plan: SourcePlan, model: dict[str, Any], schema: pa.Schema,
                 overwrite: bool = False) -> None:
        self.path = Path(out)
        self.plan = plan
        self.schema = schema
        keep = [f for f in schema if f.name not in (PARTITION, ROW)]
        if plan.id_name != "id":
            keep = [pa.field(plan.id_name, f.type) if f.name == "id" else f for f in keep]
        self.file_schema = pa.schema(keep)
        self._rows = {p.index: p.rows for p in plan.partitions}
        self._open: dict[int, _Open] = {}
        self.images = 0
        self.errors = 0
        manifest = {"format": _FORMAT, "model": model, "source": plan.source, "kind": plan.kind,
                    "plan": plan.fingerprint(), "partitions": len(plan.partitions), "rows": plan.rows,
                    "columns": self.file_schema.names}
        self._prepare(manifest, overwrite)

    def _prepare(self, manifest: dict[str, Any], overwrite: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file; OUT is a folder of Parquet files (one per partition)")
        doc_path = self.path / MANIFEST
        if self.path.is_dir():
            ours = [f for f in self.path.iterdir() if f.name == MANIFEST or _is_part(f.name) or _is_tmp(f.name)]
            others = [f for f in self.path.iterdir() if f not in ours]
            if others and not doc_path.is_file():
                raise UserError(f"--out {self.path} is a folder of other files ({others[0].name}, ...); "
                                "give a new or empty folder")
            if overwrite:
                for f in ours:
                    f.unlink()
            elif doc_path.is_file():
                try:
                    before = json.loads(doc_path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    before = {}
                for key, what in (("model", "model"), ("plan", "source")):
                    if before.get(key) != manifest[key]:
                        raise UserError(f"--out {self.path} holds the results of another {what} "
                                        f"({before.get('source') if key == 'plan' else before.get('model', {})});"
                                        " give another --out, or --overwrite to start afresh")
            for f in list(self.path.iterdir()):
                if _is_tmp(f.name):  # a partition a killed run was writing: it is scored again
                    f.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        if not doc_path.is_file():
            atomic_write_text(doc_path, json.dumps(manifest, indent=2))

    def part_path(self, index: int) -> Path:
        """The committed file of partition ``index``."""
        return self.path / f"part-{index:05d}.parquet"

    def pending(self) -> list[Partition]:
        """Partitions with no committed file yet, in plan order; empty partitions are committed at once."""
        todo = []
        for p in self.plan.partitions:
            if self.part_path(p.index).is_file():
                continue
            if p.rows == 0:
                self._writer(p.index)
                self._commit(p.index)
                continue
            todo.append(p)
        return todo

    def totals(self) -> tuple[int, int]:
        """Rows and error rows in every committed partition file (from their footers)."""
        import pyarrow.parquet as pq

        rows = errors = 0
        for p in self.plan.partitions:
            f = self.part_path(p.index)
            if f.is_file():
                meta = pq.ParquetFile(f).metadata
                rows += meta.num_rows
                kv = meta.metadata or {}
                errors += int(kv.get(b"digitlab.errors", b"0"))
        return rows, errors

    def _writer(self, index: int) -> _Open:
        import pyarrow.parquet as pq

        state = self._open.get(index)
        if state is None:
            tmp = self.path / f".part-{index:05d}.parquet.{os.getpid()}.tmp"
            writer = pq.ParquetWriter(tmp, self.file_schema, compression="zstd")
            state = self._open[index] = _Open(tmp, writer, self._rows[index])
        return state

    def add(self, rows: pa.RecordBatch | pa.Table) -> None:
        """Write result rows (of any partitions) and commit every partition they complete."""
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
        if table.num_rows == 0:
            return
        parts = table.column(PARTITION).to_numpy()
        for index in np.unique(parts):
            sub = table.filter(pa.array(parts == index)) if len(np.unique(parts)) > 1 else table
            state = self._writer(int(index))
            pos = sub.column(ROW).to_numpy()
            first = np.zeros(len(pos), bool)
            first[np.unique(pos, return_index=True)[1]] = True  # a row twice in one batch: keep one
            fresh = first & ~state.seen[pos]  # a row delivered before (a retried task): already written
            if not fresh.all():
                sub = sub.filter(pa.array(fresh))
                pos = pos[fresh]
            if len(pos) == 0:
                continue
            state.seen[pos] = True
            state.count += len(pos)
            out = sub.drop_columns([PARTITION, ROW])
            out = out.rename_columns(self.file_schema.names).cast(self.file_schema)
            state.errors += len(pos) - out.column("error").null_count
            state.writer.write_table(out, row_group_size=max(1, len(pos)))
            self.images += len(pos)
            self.errors += len(pos) - out.column("error").null_count
            if state.count == len(state.seen):
                self._commit(int(index))

    def _commit(self, index: int) -> None:
        state = self._open.pop(index)
        state.writer.add_key_value_metadata({"digitlab.partition": str(index), "digitlab.rows": str(state.count),
                                             "digitlab.errors": str(state.errors)})
        state.writer.close()
        state.tmp.chmod(0o666 & ~_umask())
        os.replace(state.tmp, self.part_path(index))

    def unfinished(self) -> list[int]:
        """Partitions that received rows but not all of them."""
        return sorted(self._open)

    def abort(self) -> None:
        """Drop the partitions being written (their temporary files); the committed ones stay."""
        for state in self._open.values():
            try:
                state.writer.close()
            finally:
                state.tmp.unlink(missing_ok=True)
        self._open.clear()


def _umask() -> int:
    from digitlab._io import umask

    return umask()


def _is_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


def _is_tmp(name: str) -> bool:
    return name.startswith(".part-") and name.endswith(".tmp")


def model_identity(folder: Path, name: str) -> dict[str, Any]:
    """The model's name and a checksum of its files: a resumed run must score with the same model."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return {"name": name, "sha256": h.hexdigest()}


# ------------------------------------------------------------------------------------------------- score


def score(spec: ScoreSpec, *, settings: Settings | None = None, progress: ProgressFn | None = None) -> ScoreResult:
    """Score every image of ``spec.source`` with ``spec.model`` into ``spec.out`` (see the module docstring).

    ``progress("images", done, total, per_s=...)`` as batches are written (``total``: the rows left to score).

    Raises
    ------
    NotFoundError
        No such model or source.
    UserError
        A bad option, source or output folder; ``engine="ray"`` without Ray installed (the message says how to
        install it).
    ModelError
        The model cannot be loaded.
    """
    from digitlab.engines import check_engine
    from digitlab.workflows import resolve_model

    settings = settings or get_settings()
    report = progress or _quiet
    engine = check_engine(spec.engine)
    if spec.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {spec.batch_size}")
    if spec.workers is not None and spec.workers < 1:
        raise UserError(f"--workers must be at least 1, got {spec.workers}")
    if engine == "ray":
        from digitlab.engines import check_ray

        check_ray()
    plan = plan_source(spec.source, settings=settings, partition_rows=spec.partition_rows,
                       id_column=spec.id_column)
    folder, name = resolve_model(spec.model, settings)
    scorer = Scorer(folder, name, plan.id_kind)  # checks the model loads, and gives the output's columns
    sink = OutputFolder(spec.out, plan, model_identity(folder, name), scorer.schema, overwrite=spec.overwrite)
    todo = sink.pending()
    skipped = len(plan.partitions) - len(todo)
    total = sum(p.rows for p in todo)
    start = time.perf_counter()
    report("images", 0, total, per_s=0.0)

    first: list[float] = []

    def written(rows: pa.RecordBatch | pa.Table) -> None:
        if not first:
            first.append(time.perf_counter() - start)
        sink.add(rows)
        elapsed = time.perf_counter() - start
        report("images", sink.images, total, per_s=round(sink.images / elapsed) if elapsed > 0 else 0.0)

    workers = 0
    try:
        if todo:
            if engine == "local":
                from digitlab.engines.local import score_local

                workers = score_local(todo, plan, folder, name, scorer, spec.batch_size, spec.workers, written)
            else:
                from digitlab.engines.ray_engine import score_ray

                workers = score_ray(todo, plan, folder, name, spec.batch_size, spec.workers, spec.address, written)
        if sink.unfinished():
            raise RuntimeError(f"partitions {sink.unfinished()} were not delivered whole")
    except BaseException:
        sink.abort()
        raise
    seconds = time.perf_counter() - start
    images_total, errors_total = sink.totals()
    return ScoreResult(images=sink.images, errors=sink.errors, seconds=seconds,
                       images_per_second=sink.images / seconds if seconds > 0 and sink.images else 0.0,
                       out=sink.path, partitions=len(plan.partitions), skipped=skipped, images_total=images_total,
                       errors_total=errors_total, engine=engine, workers=workers,
                       startup_seconds=first[0] if first else seconds)


def iter_scored(scorer: Scorer, parts: Iterable[Partition], batch_size: int,
                image_column: str) -> Iterable[pa.RecordBatch]:
    """Read and score ``parts`` in this process, batch by batch (what one worker does)."""
    from digitlab.sources import read_partition

    for part in parts:
        for batch in read_partition(part, batch_size, image_column):
            yield scorer.score(batch)
