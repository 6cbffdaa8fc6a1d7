"""The ``ray`` engine: batch scoring on a Ray cluster (or a Ray started on this machine).

The pipeline is Ray Data's: a dataset of the partitions left to score (``from_items``) →
``map_batches`` over a fixed pool of model actors (one CPU each; the model is shipped once through the object
store and loaded once per actor) → ``iter_batches`` back to the caller, who writes and commits each partition
(:class:`digitlab.score.OutputFolder`). Each actor reads its partition itself, a batch at a time, where it runs:
the source must be reachable from every node (a shared or object-store path), the output need not be.

Why not ``read_parquet``/``read_images`` → ``write_parquet``: a resumed run must know exactly which rows each
output file holds, and Ray Data's readers split files into blocks of their own choosing, its image reader stops
the whole dataset at the first file it cannot decode, it has no reader for IDX, MNIST CSV or the DuckDB store,
and ``write_parquet`` writes files under their final names as blocks arrive, so a killed run leaves partial files
that look whole. digitlab's partitions (:mod:`digitlab.sources`) give the same streaming with an exact commit.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitlab.engines import ray_session

if TYPE_CHECKING:
    import pyarrow as pa

    from digitlab.sources import Partition, SourcePlan

__all__ = ["model_files", "score_ray"]


def model_files(folder: Path) -> dict[str, bytes]:
    """The files of a saved model, to ship to the actors (a model is a few MB)."""
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}


class RayScorer:
    """A Ray Data actor: the model, loaded once; each call scores whole partitions, yielding result batches.

    Parameters
    ----------
    model : list of one ObjectRef
        The model's files (:func:`model_files`), in a list so Ray hands the reference over unresolved.
    name, id_kind, image_column, batch_size
        As :class:`digitlab.score.Scorer` and :func:`digitlab.sources.read_partition` take them.
    """

    def __init__(self, model: list[Any], name: str, id_kind: str, image_column: str, batch_size: int) -> None:
        import ray
        from threadpoolctl import threadpool_limits

        from digitlab.engines.local import WORKER_CHUNK
        from digitlab.score import Scorer

        self._limits = threadpool_limits(1)  # one CPU per actor: BLAS and OpenMP on one thread
        self._dir = tempfile.TemporaryDirectory(prefix="digitlab-model-")
        for fname, data in ray.get(model[0]).items():
            (Path(self._dir.name) / fname).write_bytes(data)
        self.scorer = Scorer(self._dir.name, name, id_kind, chunk=WORKER_CHUNK)
        self.image_column = image_column
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        import pyarrow as pa

        from digitlab.score import iter_scored
        from digitlab.sources import Partition

        for desc in batch.column("partition").to_pylist():
            fields = json.loads(desc)
            part = Partition(**{**fields, "files": tuple(fields["files"])})
            for rows in iter_scored(self.scorer, [part], self.batch_size, self.image_column):
                yield pa.Table.from_batches([rows])


def score_ray(todo: Sequence[Partition], plan: SourcePlan, folder: Path, name: str, batch_size: int,
              workers: int | None, address: str | None, write: Callable[[pa.Table], None]) -> int:
    """Score the partitions ``todo`` on Ray and hand each result batch to ``write``; returns the actors used."""
    with ray_session(address) as ray:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.target_max_block_size = 4 << 20  # result batches are small: hand them on as they come
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(len(todo), workers or cpus))
        ref = ray.put(model_files(folder))
        items = [{"partition": json.dumps(p.to_json())} for p in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(RayScorer, batch_size=1, batch_format="pyarrow", concurrency=n, num_cpus=1,
                            fn_constructor_kwargs={"model": [ref], "name": name, "id_kind": plan.id_kind,
                                                   "image_column": plan.image_column, "batch_size": batch_size})
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
            write(table)
        return n
