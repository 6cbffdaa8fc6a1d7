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
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

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
        ctx.target_max_block_size = 64 << 10  # a result batch is ~100 KB: each one is handed on as it comes
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(len(todo), workers or cpus))
        ref = ray.put(model_files(folder))
        items = [{"partition": json.dumps(p.to_json())} for p in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(RayScorer, batch_size=1, batch_format="pyarrow",
                            compute=ray.data.ActorPoolStrategy(size=n), num_cpus=1,
                            fn_constructor_kwargs={"model": [ref], "name": name, "id_kind": plan.id_kind,
                                                   "image_column": plan.image_column, "batch_size": batch_size})
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
            write(table)
        return n


# -------------------------------------------------------------------------------------------------- sweeps


def _tune_trial(config: dict[str, Any], spec: Any = None, data: Any = None, has_epochs: bool = False) -> None:
    """A Ray Tune trial: :func:`digitlab.sweep.run_trial`, reporting each epoch's validation accuracy (CNN)."""
    from dataclasses import asdict

    from ray import tune
    from threadpoolctl import threadpool_limits

    from digitlab.sweep import run_trial

    def epoch(done: int, accuracy: float) -> None:
        tune.report({"accuracy": accuracy, "epoch": done, "final": False})

    with threadpool_limits(1):  # one CPU per trial
        trial = run_trial(spec, data, int(config["trial"]["index"]), config["trial"]["params"], threads=1,
                          report=epoch if has_epochs else None)
    tune.report({"accuracy": trial.accuracy, "epoch": trial.epochs or 1, "final": True,
                 "trial": json.dumps(asdict(trial), default=float)})


def sweep_ray(spec: Any, data: Any, combos: Sequence[dict[str, Any]], has_epochs: bool,
              finished: Callable[[Any], None]) -> int:
    """Run the trials as Ray Tune trials (one CPU each; ASHA on the epochs of models that have them).

    ``finished(trial)`` is called on this process as each trial completes or is stopped early, so runs are
    recorded as they come. Returns the trials run at once.

    Raises
    ------
    UserError, DigitlabError
        The first trial that failed, with its error.
    """
    import os
    import shutil

    from digitlab.errors import DigitlabError, UserError
    from digitlab.sweep import Trial

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TensorBoard files per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with ray_session(spec.address) as ray:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(len(combos), spec.workers or cpus))
        delivered: set[int] = set()

        class Record(tune.Callback):
            def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
                result = trial.last_result or {}
                index = int(trial.config["trial"]["index"])
                if index in delivered or "accuracy" not in result:
                    return
                delivered.add(index)
                if result.get("final"):
                    doc = json.loads(result["trial"])
                    finished(Trial(**{**doc, "folds": tuple(doc["folds"])}))
                else:  # stopped by ASHA after an epoch: its last validation accuracy
                    acc = float(result["accuracy"])
                    finished(Trial(index=index, params=dict(trial.config["trial"]["params"]), accuracy=acc,
                                   std=0.0, folds=({"accuracy": acc, "epoch": int(result["epoch"])},),
                                   train_seconds=float(result.get("time_total_s", 0.0)),
                                   epochs=int(result["epoch"]), stopped=True))

        scheduler = None
        if has_epochs:
            from digitlab.models import make_model

            epochs = int(make_model(spec.model, **{**spec.params, **combos[0]})._config()["epochs"])
            if spec.dry_run:
                epochs = 1
            scheduler = ASHAScheduler(time_attr="epoch", max_t=max(epochs, 1), grace_period=1, reduction_factor=2)
        trainable = tune.with_resources(
            tune.with_parameters(_tune_trial, spec=spec, data=data, has_epochs=has_epochs), {"cpu": 1})
        space = {"trial": tune.grid_search([{"index": i, "params": c} for i, c in enumerate(combos)])}
        storage = tempfile.mkdtemp(prefix="digitlab-tune-")
        try:
            tuner = tune.Tuner(trainable, param_space=space,
                               # reuse_actors: a trial process (its imports, the data) serves trial after trial
                               tune_config=tune.TuneConfig(metric="accuracy", mode="max", scheduler=scheduler,
                                                           max_concurrent_trials=n, reuse_actors=True),
                               run_config=tune.RunConfig(name="sweep", storage_path=storage, verbose=0,
                                                         callbacks=[Record()]))
            results = tuner.fit()
            errors = [results[i].error for i in range(len(results)) if results[i].error is not None]
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        if errors:
            cause = errors[0]
            inner = getattr(cause, "cause", None) or cause
            if isinstance(inner, UserError):
                raise UserError(str(inner))
            raise DigitlabError(f"a sweep trial failed on Ray: {type(inner).__name__}: {inner}")
        return n
