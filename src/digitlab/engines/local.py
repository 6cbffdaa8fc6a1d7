"""The ``local`` engine: batch scoring over every core of this machine, with no scheduler but the OS.

One worker scores in the calling process, the model predicting on every core it wants (the CNN's int8 graph
runs ONNX Runtime on two threads for a batch). Several workers are processes (spawned, so nothing of the
caller's threads is copied), each loading the model once and taking whole partitions from a queue; they score
micro-batches of 64 images so that each uses one core, and send their result rows back through a bounded queue,
so a slow writer slows them down instead of filling memory. A worker that finds the caller gone (killed) stops.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitlab.errors import DigitlabError, ModelError, UserError

if TYPE_CHECKING:
    import pyarrow as pa

    from digitlab.score import Scorer
    from digitlab.sources import Partition, SourcePlan

__all__ = ["WORKER_CHUNK", "score_local"]

#: Images per predict call in a worker that shares the machine with others: the CNN's one-thread size.
WORKER_CHUNK = 64
_POLL = 0.5  # seconds between checks that the other side is still there


def score_local(todo: Sequence[Partition], plan: SourcePlan, folder: Path, name: str, scorer: Scorer,
                batch_size: int, workers: int | None, write: Callable[[pa.RecordBatch], None]) -> int:
    """Score the partitions ``todo`` and hand each result batch to ``write``; returns the workers used.

    Raises
    ------
    UserError, ModelError
        What a worker raised (a source file that became unreadable, ...), with its message.
    """
    from digitlab.score import iter_scored

    n = min(len(todo), workers or os.cpu_count() or 1)
    if n <= 1:
        for rows in iter_scored(scorer, todo, batch_size, plan.image_column):
            write(rows)
        return 1
    ctx = mp.get_context("spawn")
    tasks: Any = ctx.Queue()
    results: Any = ctx.Queue(maxsize=4 * n)
    for part in todo:
        tasks.put(part)
    for _ in range(n):
        tasks.put(None)
    procs = [ctx.Process(target=_worker, args=(str(folder), name, plan.id_kind, plan.image_column, batch_size,
                                               tasks, results, os.getpid()), daemon=True, name=f"digitlab-score-{i}")
             for i in range(n)]
    for p in procs:
        p.start()
    try:
        running = n
        while running:
            try:
                kind, payload = results.get(timeout=_POLL)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise DigitlabError(f"a scoring worker died (exit code {dead[0].exitcode})") from None
                continue
            if kind == "batch":
                write(payload)
            elif kind == "done":
                running -= 1
            else:
                cls, message = payload
                raise (UserError if cls == "user" else ModelError if cls == "model" else DigitlabError)(message)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
        tasks.close()
        results.close()
    return n


def _worker(folder: str, name: str, id_kind: str, image_column: str, batch_size: int, tasks: Any, results: Any,
            parent: int) -> None:
    """A worker process: load the model, then score partitions until told to stop (None) or orphaned."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    def send(item: tuple[str, Any]) -> None:
        while True:
            try:
                results.put(item, timeout=_POLL)
                return
            except queue.Full:
                if os.getppid() != parent:
                    raise SystemExit(0) from None

    try:
        from digitlab.score import Scorer, iter_scored

        with threadpool_limits(1):  # BLAS and OpenMP: one core per worker
            scorer = Scorer(folder, name, id_kind, chunk=WORKER_CHUNK)
            while True:
                try:
                    part = tasks.get(timeout=_POLL)
                except queue.Empty:
                    if os.getppid() != parent:
                        return
                    continue
                if part is None:
                    break
                for rows in iter_scored(scorer, [part], batch_size, image_column):
                    send(("batch", rows))
        send(("done", None))
    except UserError as exc:
        send(("error", ("user", str(exc))))
    except ModelError as exc:
        send(("error", ("model", str(exc))))
    except Exception as exc:
        send(("error", ("internal", f"{type(exc).__name__}: {exc}")))
