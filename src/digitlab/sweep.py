"""Hyper-parameter sweeps: every combination of a grid (or random draws from it) trained and validated.

``digitlab sweep MODEL --grid C=0.1,1,10 --grid max_iter=100,300`` is :func:`sweep`::

    from digitlab.sweep import Choice, SweepSpec, sweep

    result = sweep(SweepSpec(model="logreg", space={"C": Choice((0.1, 1.0))}, train_size=5000))
    result.best.params, result.best.accuracy, result.best.run

Each trial trains on the training rows (``dataset``, a stratified sample of ``train_size`` of them) and is
measured on rows it never saw: ``folds`` stratified folds (the mean accuracy), or the held-out rows matching
the SQL condition ``where``. MNIST test is never used to choose: ``save`` trains the best trial's parameters on
every training row and only then measures it on MNIST test, as ``digitlab train`` does. Every trial is recorded
as a ``sweep`` run in the store (its parameters, its folds' metrics, their mean and std), so ``digitlab runs``
lists them and ``digitlab compare`` puts the best side by side.

Engines: ``local`` runs the trials in worker processes of this machine (one core each); ``ray`` runs them as
Ray Tune trials (one CPU each) on a Ray cluster, with ASHA stopping the CNN's worst trials early: the CNN
validates after every epoch and the trials that fall behind at an epoch rung stop there. The trials, and so
their results, are the same on both engines for the same seed.
"""

from __future__ import annotations

import itertools
import math
import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.errors import ParameterError, UserError
from digitlab.models.base import ProgressFn
from digitlab.settings import Settings, get_settings

__all__ = ["DRY_RUN_TRIALS", "Choice", "Space", "SweepResult", "SweepSpec", "Trial", "Uniform", "expand_trials",
           "sweep"]

#: Trials of a dry run (``SweepSpec(dry_run=True)``).
DRY_RUN_TRIALS = 2


@dataclass(frozen=True)
class Choice:
    """One of these values (a grid axis)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise UserError("a grid axis needs at least one value")


@dataclass(frozen=True)
class Uniform:
    """A number drawn uniformly from [low, high] (on a log scale with ``log``; an integer with ``integer``).

    Only for random search.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and self.low <= 0):
            kind = "0 < low <= high" if self.log else "low <= high"
            raise UserError(f"a range needs {kind}, got ({self.low:g}, {self.high:g})")

    def draw(self, rng: np.random.Generator) -> float | int:
        """One value."""
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))


Space = Choice | Uniform


@dataclass(frozen=True)
class SweepSpec:
    """What :func:`sweep` tries and how it validates.

    Attributes
    ----------
    model : str
        A registered model name.
    space : mapping of str to Choice or Uniform
        The parameters swept.
    params : mapping
        Fixed parameters of every trial.
    search : {"grid", "random"}
        Every combination, or ``trials`` random draws (distinct combinations when the space is a grid and
        ``trials`` does not exceed it).
    trials : int, optional
        Random search only (default 10).
    folds : int, optional
        Validate by stratified K-fold (default 3, unless ``where`` is given).
    where : str, optional
        Validate on the training rows matching this SQL condition (``"hash(id) % 5 = 0"``), train on the others.
        The CNN is swept this way (one fit per trial, which early stopping can cut short).
    dataset : str, default="mnist_train"
    train_size : int, optional
        A stratified sample of the training rows (seeded).
    seed : int, default=0
        Seeds the sample, the folds, the random draws and each trial's model (``random_state``/``seed``).
    engine : {"local", "ray"}
    address : str, optional
        Ray only; as :class:`digitlab.score.ScoreSpec`'s.
    workers : int, optional
        Trials at once (default: every core, or every CPU of the Ray cluster).
    save : str, optional
        Train the best trial's parameters on every training row, test on MNIST test, save under this name.
    record : bool, default=True
        Record every trial as a ``sweep`` run.
    dry_run : bool, default=False
        At most :data:`DRY_RUN_TRIALS` trials on 1000 images, one epoch, nothing recorded or saved.
    """

    model: str
    space: Mapping[str, Space]
    params: Mapping[str, Any] = field(default_factory=dict)
    search: str = "grid"
    trials: int | None = None
    folds: int | None = None
    where: str | None = None
    dataset: str = "mnist_train"
    train_size: int | None = None
    seed: int = 0
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    save: str | None = None
    record: bool = True
    dry_run: bool = False

    @property
    def validation(self) -> str:
        """How trials are validated, in words."""
        return f"held out: {self.where}" if self.where else f"{self.folds or 3}-fold cross-validation"


@dataclass(frozen=True)
class Trial:
    """One trial's parameters and validation results.

    Attributes
    ----------
    index : int
    params : dict
        The swept parameters' values.
    accuracy : float
        Mean validation accuracy.
    std : float
        Over the folds (0 for a held-out set).
    folds : tuple of dict
        Per fold (or the held-out set): summary metrics and ``train_seconds``.
    train_seconds : float
        Mean fit time.
    epochs : int or None
        Epochs trained (models with epochs), fewer than asked when early stopping cut the trial short.
    stopped : bool
        Cut short by early stopping.
    run : str or None
        The recorded run.
    """

    index: int
    params: dict[str, Any]
    accuracy: float
    std: float
    folds: tuple[dict[str, Any], ...]
    train_seconds: float
    epochs: int | None = None
    stopped: bool = False
    run: str | None = None


@dataclass(frozen=True)
class SweepResult:
    """The trials, best first.

    Attributes
    ----------
    sweep : str
        The sweep's id; its trials' runs are ``SWEEP-NNN``.
    trials : tuple of Trial
        Best (highest mean validation accuracy) first.
    seconds : float
        Wall time of the trials.
    saved : TrainResult or None
        The best parameters retrained and saved (``save``).
    """

    sweep: str
    spec: SweepSpec
    trials: tuple[Trial, ...]
    seconds: float
    workers: int
    saved: Any = None

    @property
    def best(self) -> Trial:
        """The trial with the highest mean validation accuracy."""
        return self.trials[0]

    @property
    def compare_command(self) -> str:
        """``digitlab compare`` of the best recorded trials (up to 4)."""
        runs = [t.run for t in self.trials[:4] if t.run]
        return shlex.join(["digitlab", "compare", *runs]) if len(runs) >= 2 else ""


# ------------------------------------------------------------------------------------------------- trials


def expand_trials(spec: SweepSpec) -> list[dict[str, Any]]:
    """The swept parameters of every trial, in order: the grid's product, or seeded random draws.

    Raises
    ------
    UserError
        An empty space, a range in a grid search, a bad ``search`` or ``trials``.
    """
    if not spec.space:
        raise UserError("nothing to sweep: give at least one --grid key=v1,v2")
    keys = list(spec.space)
    if spec.search == "grid":
        ranges = [k for k in keys if not isinstance(spec.space[k], Choice)]
        if ranges:
            raise UserError(f"{ranges[0]!r} is a range: ranges are for --search random")
        if spec.trials is not None:
            raise UserError("--trials is for --search random; a grid search trains every combination")
        axes = [spec.space[k].values for k in keys]  # type: ignore[union-attr]
        combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*axes)]
    elif spec.search == "random":
        n = 10 if spec.trials is None else spec.trials
        if n < 1:
            raise UserError(f"--trials must be at least 1, got {n}")
        rng = np.random.default_rng(spec.seed)
        if all(isinstance(s, Choice) for s in spec.space.values()):
            grid = list(itertools.product(*(spec.space[k].values for k in keys)))  # type: ignore[union-attr]
            if n <= len(grid):
                picks = rng.choice(len(grid), size=n, replace=False)
                return [dict(zip(keys, grid[int(i)], strict=True)) for i in picks]
        combos = []
        for _ in range(n):
            trial = {}
            for k in keys:
                s = spec.space[k]
                trial[k] = s.values[int(rng.integers(len(s.values)))] if isinstance(s, Choice) else s.draw(rng)
            combos.append(trial)
    else:
        raise UserError(f"--search must be grid or random, got {spec.search!r}")
    return combos


@dataclass(frozen=True)
class _Data:
    """The training rows and the validation splits, the same in every worker."""

    X: np.ndarray
    y: np.ndarray
    splits: tuple[tuple[np.ndarray, np.ndarray], ...]


def _prepare(spec: SweepSpec, settings: Settings) -> _Data:
    from digitlab.data.select import filter_where, load_dataset, stratified_sample

    images, labels, ids = load_dataset(settings, spec.dataset, None)
    size = min(spec.train_size or 1000, 1000) if spec.dry_run else spec.train_size
    if size is not None:
        keep = stratified_sample(labels, size, spec.seed)
        images, labels, ids = images[keep], labels[keep], ids[keep]
    X = images.reshape(len(images), -1)
    if spec.where:
        _, _, val_ids = filter_where(images, labels, ids, spec.where)
        val = np.isin(ids, val_ids)
        if not val.any() or val.all():
            raise UserError(f"--where {spec.where!r} must hold for some training rows and not for others "
                            f"(it holds for {int(val.sum())} of {len(val)})")
        return _Data(X, labels, ((np.flatnonzero(~val), np.flatnonzero(val)),))
    from sklearn.model_selection import StratifiedKFold

    k = spec.folds or 3
    if k < 2:
        raise UserError(f"--folds must be at least 2, got {k}")
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        raise UserError(f"--folds {k} needs at least {k} images of every label; the rarest has {counts.min()}")
    splits = StratifiedKFold(k, shuffle=True, random_state=spec.seed).split(X, labels)
    return _Data(X, labels, tuple((tr, te) for tr, te in splits))


def _trial_params(spec: SweepSpec, swept: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of a trial: the fixed ones, the swept ones, the seed, one epoch for a dry run."""
    from digitlab.models import model_class

    defaults = model_class(spec.model)().get_params()
    params = {**spec.params, **swept}
    for key in ("random_state", "seed"):
        if key in defaults and key not in params:
            params[key] = spec.seed
    if spec.dry_run and "epochs" in defaults:
        params["epochs"] = 1
    return params


#: ``report(epoch, accuracy)`` after each epoch of a model with epochs: the early-stopping hook.
EpochReport = Callable[[int, float], None]


def run_trial(spec: SweepSpec, data: _Data, index: int, swept: Mapping[str, Any], *,
              threads: int | None = None, report: EpochReport | None = None) -> Trial:
    """Fit and validate one trial on every split; ``report`` gets the CNN's validation accuracy per epoch.

    Raises
    ------
    ParameterError
        The model rejects a parameter.
    """
    from digitlab.evaluate import evaluate, summary
    from digitlab.models import make_model

    params = _trial_params(spec, swept)
    per_fold: list[dict[str, Any]] = []
    epochs: int | None = None
    for tr, te in data.splits:
        est = make_model(spec.model, **params)
        if threads is not None and "n_threads" in est.get_params() and params.get("n_threads") is None:
            est.set_params(n_threads=threads)
        start = time.perf_counter()
        try:
            if est.fit_progress and report is not None and "epochs" in est.get_params():
                epochs = _fit_reporting(est, data.X[tr], data.y[tr], data.X[te], data.y[te], report)
            else:
                est.fit(data.X[tr], data.y[tr])
        except UserError:
            raise
        except ValueError as exc:
            raise ParameterError(f"cannot train {spec.model!r} with {dict(swept)}: {exc}") from None
        seconds = time.perf_counter() - start
        if epochs is None and hasattr(est, "history_"):
            epochs = len(est.history_)
        ev = evaluate(est, data.X[te], data.y[te])
        per_fold.append({**summary(ev.metrics), "train_seconds": seconds})
    acc = [float(f["accuracy"]) for f in per_fold]
    return Trial(index=index, params=dict(swept), accuracy=float(np.mean(acc)), std=float(np.std(acc)),
                 folds=tuple(per_fold), train_seconds=float(np.mean([f["train_seconds"] for f in per_fold])),
                 epochs=epochs)


def _fit_reporting(est: Any, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray,
                   report: EpochReport) -> int:
    """Fit a CNN, measuring the network on the validation rows after every epoch (from its checkpoint)."""
    import tempfile

    import torch

    from digitlab.models.cnn.net import DigitNet, standardised

    done = 0
    with tempfile.TemporaryDirectory(prefix="digitlab-sweep-") as tmp:
        ckpt = Path(tmp)
        cfg = est._config()

        def progress(key: str, completed: float, total: float | None = None, **info: object) -> None:
            nonlocal done
            if key != "epoch":
                return
            done = int(completed)
            if done == cfg["epochs"]:
                return  # the last epoch is measured on the fitted model itself
            from safetensors.torch import load_file

            weights = next(ckpt.glob("epoch-*.safetensors"))
            net = DigitNet(cfg["width"], cfg["dropout"], len(np.unique(y)), cfg["depth"])
            net.load_state_dict({k[4:]: v for k, v in load_file(str(weights)).items() if k.startswith("net.")})
            with torch.inference_mode():
                logits = net.eval()(torch.from_numpy(standardised(Xv)))
            classes = np.unique(y)
            report(done, float((classes[logits.argmax(1).numpy()] == yv).mean()))

        est.fit(X, y, progress=progress, checkpoint_dir=ckpt)
    return done


# -------------------------------------------------------------------------------------------------- sweep


def _quiet(key: str, completed: float, total: float | None = None, **info: object) -> None:
    """A progress function that shows nothing."""


def sweep(spec: SweepSpec, *, settings: Settings | None = None, progress: ProgressFn | None = None) -> SweepResult:
    """Train and validate every trial of ``spec``, record each as a run, optionally save the best.

    ``progress("trials", done, total, best=...)`` as trials finish.

    Raises
    ------
    NotFoundError
        Unknown model or dataset.
    UserError
        A bad space, option or parameter; the CNN with ``folds``; ``engine="ray"`` without Ray.
    """
    from digitlab.engines import check_engine, check_ray
    from digitlab.models import make_model, model_class
    from digitlab.runs import new_run_id

    settings = settings or get_settings()
    report = progress or _quiet
    engine = check_engine(spec.engine)
    if spec.folds is not None and spec.where is not None:
        raise UserError("give --folds or --where, not both")
    if spec.save is not None:
        from digitlab.models.io import check_model_name

        check_model_name(spec.save)
    cls = model_class(spec.model)
    has_epochs = "epochs" in cls().get_params()
    if has_epochs and spec.where is None:
        raise UserError(f"a {spec.model} sweep validates on held-out rows, so that early stopping can compare "
                        "epochs: give --where, e.g. --where \"hash(id) % 6 = 0\"")
    combos = expand_trials(spec)
    if spec.dry_run:
        combos = combos[:DRY_RUN_TRIALS]
    for swept in combos:
        make_model(spec.model, **_trial_params(spec, swept))  # a bad parameter fails before any training
    if engine == "ray":
        check_ray()
    data = _prepare(spec, settings)
    sweep_id = new_run_id("sweep")
    recording = spec.record and not spec.dry_run
    trials: list[Trial] = []

    def finished(trial: Trial) -> None:
        run = f"{sweep_id}-{trial.index:03d}"
        if recording:
            _record(spec, settings, sweep_id, run, trial)
        trials.append(replace(trial, run=run if recording else None))
        best = max(t.accuracy for t in trials)
        report("trials", len(trials), len(combos), best=best)

    report("trials", 0, len(combos))
    start = time.perf_counter()
    if engine == "local":
        workers = _sweep_local(spec, settings, data, combos, finished)
    else:
        from digitlab.engines.ray_engine import sweep_ray

        workers = sweep_ray(spec, data, combos, has_epochs, finished)
    seconds = time.perf_counter() - start
    ranked = tuple(sorted(trials, key=lambda t: (-t.accuracy, t.std, t.index)))
    saved = None
    if spec.save is not None and not spec.dry_run:
        from digitlab.workflows import TrainSpec, train

        best = _trial_params(spec, ranked[0].params)
        saved = train(TrainSpec(model=spec.model, params=best, train_size=spec.train_size, dataset=spec.dataset,
                                seed=spec.seed, name=spec.save,
                                notes={"sweep": {"id": sweep_id, "trial": ranked[0].run,
                                                 "validation": spec.validation,
                                                 "accuracy": round(ranked[0].accuracy, 6)}}),
                      settings=settings, progress=report)
    return SweepResult(sweep=sweep_id, spec=spec, trials=ranked, seconds=seconds, workers=workers, saved=saved)


def _record(spec: SweepSpec, settings: Settings, sweep_id: str, run: str, trial: Trial) -> None:
    from digitlab.runs import record_run
    from digitlab.store import Store

    keys = [k for k in trial.folds[0] if k not in ("n",)] if trial.folds else []
    mean = {k: float(np.mean([f[k] for f in trial.folds])) for k in keys}
    std = {k: float(np.std([f[k] for f in trial.folds])) for k in keys}
    metrics = {"sweep": sweep_id, "trial": trial.index, "swept": trial.params, "validation": spec.validation,
               "engine": spec.engine, "folds": list(trial.folds), "mean": mean, "std": std}
    if trial.epochs is not None:
        metrics["epochs"] = trial.epochs
        metrics["stopped_early"] = trial.stopped
    record_run(Store(settings.store_path), run=run, kind="sweep", model_name=None, model_type=spec.model,
               params=_trial_params(spec, trial.params), dataset=spec.dataset, where=spec.where,
               train_seconds=trial.train_seconds, accuracy=trial.accuracy, metrics=metrics)


# -------------------------------------------------------------------------------------------- local engine


def _sweep_local(spec: SweepSpec, settings: Settings, data: _Data, combos: Sequence[dict[str, Any]],
                 finished: Callable[[Trial], None]) -> int:
    """Run the trials in worker processes (one core each), or in this process with one worker."""
    n = max(1, min(len(combos), spec.workers or os.cpu_count() or 1))
    if n == 1:
        for i, swept in enumerate(combos):
            finished(run_trial(spec, data, i, swept))
        return 1
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(spec, settings)) as pool:
        futures = {pool.submit(_worker_trial, i, swept) for i, swept in enumerate(combos)}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for f in done:
                    finished(f.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return n


_WORKER: dict[str, Any] = {}


def _init_worker(spec: SweepSpec, settings: Settings) -> None:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    _WORKER["limits"] = threadpool_limits(1)  # one core per trial
    _WORKER["spec"] = spec
    _WORKER["data"] = _prepare(spec, settings)


def _worker_trial(index: int, swept: dict[str, Any]) -> Trial:
    return run_trial(_WORKER["spec"], _WORKER["data"], index, swept, threads=1)
