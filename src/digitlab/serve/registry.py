"""The server's models: each loaded once, checked, reloaded when its folder changes, and shared safely.

:class:`ModelRegistry` loads a classifier on its first use (one thread loads,
the others wait for it), checks that it can answer (:func:`check_usable`: it
runs, gives finite scores of the right shape; :func:`ten_digit_refusal`: it
predicts the ten digits) and keeps it. :meth:`ModelRegistry.refresh`, called
every ``reload_interval`` seconds, compares each model folder's
:func:`fingerprint` with the loaded one's: a changed folder is loaded anew and
swapped in whole, a deleted one stops being served. Predictions go through
:class:`ServedModel`, which *micro-batches*: requests arriving while the model
is busy are stacked and answered by one model call
(:meth:`~digitlab.models.base.DigitClassifier.scores_and_proba`), run in a
worker thread so the event loop keeps serving. One prediction batch runs at a
time per model, and beside it up to ``explain_threads`` explanations, unless
the estimator declares ``thread_safe = False``. :class:`MixtureRegistry` does
the same loading for the Dirichlet-process mixtures of ``/v1/complete``.

Only the base class's declared API is used: ``scores_and_proba``,
``thread_safe``, ``family`` and ``explanation``; nothing is probed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from digitlab.errors import DigitlabError, ModelError, NotFoundError, UserError
from digitlab.models import model_class
from digitlab.models.base import DigitClassifier
from digitlab.models.io import LoadedModel, ModelEntry, list_models, load_model, model_path

if TYPE_CHECKING:
    from digitlab.explain import Explanation
    from digitlab.models.dpmm import DPMixtureClassifier
    from digitlab.novelty import NoveltyDetector
    from digitlab.read import Recognition
    from digitlab.serve.settings import ServeSettings

__all__ = ["Mixture", "MixtureRegistry", "ModelRegistry", "Prediction", "ServedModel", "check_usable",
           "declared_class", "fingerprint", "load_at", "ten_digit_refusal"]

T = TypeVar("T")
log = logging.getLogger("digitlab.serve")


@dataclass(frozen=True)
class Prediction:
    """One image's result.

    Attributes
    ----------
    scores : ndarray of float64, shape (10,)
    probabilities : ndarray of float64, shape (10,)
    not_a_digit : bool
        The model's not-a-digit detector flagged the image (False for a model without one).
    """

    scores: np.ndarray
    probabilities: np.ndarray
    not_a_digit: bool = False

    @property
    def digit(self) -> int:
        """The most probable digit."""
        return int(np.argmax(self.probabilities))


def declared_class(model_type: str | None) -> type[DigitClassifier] | None:
    """The registered estimator class of a card's ``model`` (its declared capabilities), or None if unknown."""
    if model_type is None:
        return None
    try:
        return model_class(model_type)
    except (NotFoundError, ImportError):
        return None


def load_at(name: str, path: Path) -> LoadedModel:
    """Load the model ``name`` from its folder ``path`` (as :func:`~digitlab.models.io.model_path` gives). Blocking.

    Raises
    ------
    ModelError
        The model's files are unusable; the message names the model, not its folder.
    """
    try:
        return load_model(path, name=name)
    except ModelError as exc:
        raise ModelError(f"model {name!r} cannot be used: {str(exc).removeprefix(f'{name}: ')}") from None
    except RecursionError:
        raise ModelError(f"model {name!r} cannot be used: its card is nested too deeply") from None


#: Per-name locks are taken from this many stripes, so the lock table stays bounded whatever names are asked for.
_LOCK_STRIPES = 64
#: A model's fingerprint: its resolved folder and the (name, size, mtime, inode) of each of its files.
Fingerprint = tuple[str, tuple[tuple[str, int, int, int], ...]]


def fingerprint(folder: Path) -> Fingerprint:
    """What changes when a model folder is rewritten (a new save renames a new folder into place). Blocking.

    Raises
    ------
    OSError
        The folder vanished.
    """
    real = os.path.realpath(folder)
    files = []
    with os.scandir(real) as it:
        for e in it:
            if e.is_file():
                st = e.stat()
                files.append((e.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return real, tuple(sorted(files))


@dataclass(frozen=True)
class _Slot(Generic[T]):
    fingerprint: Fingerprint
    value: T


class _Refused(NamedTuple):
    fingerprint: Fingerprint
    kind: type[DigitlabError]
    message: str


class _Cache(Generic[T]):
    """Values made from model folders, by name: each made once, and made again when its folder changes.

    ``get`` serves the cached value without any I/O; :meth:`refresh` (called periodically) compares
    each name's fingerprint with its folder's and reloads, drops or keeps it. A failed load is
    remembered with the fingerprint it failed on, so a broken folder is not reloaded at every request.
    Replacing a value is one dict assignment: a request holds the old value or the new one, never a mix.
    """

    def __init__(self, models_dir: Path, make: Callable[[str, Path], T], what: str) -> None:
        self.models_dir = models_dir
        self._make = make
        self._what = what
        self._items: dict[str, _Slot[T]] = {}
        self._refused: dict[str, _Refused] = {}
        self._stripes = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    def names(self) -> list[str]:
        return sorted(self._items)

    def cached(self, name: str) -> T | None:
        slot = self._items.get(name)
        return slot.value if slot is not None else None

    def _lock(self, name: str) -> threading.Lock:
        return self._stripes[hash(name) % _LOCK_STRIPES]

    def get(self, name: str) -> T:
        slot = self._items.get(name)
        if slot is not None:
            return slot.value
        with self._lock(name):
            slot = self._items.get(name)
            if slot is not None:
                return slot.value
            path = model_path(name, self.models_dir)  # UserError, NotFoundError
            return self._load(name, path)

    def _load(self, name: str, path: Path) -> T:
        """Make the value of ``name`` from ``path`` (holding its lock), or raise why it cannot be."""
        try:
            fp = fingerprint(path)
        except OSError:
            raise NotFoundError(f"no model named {name!r}: its folder vanished") from None
        refused = self._refused.get(name)
        if refused is not None and refused.fingerprint == fp:
            raise refused.kind(refused.message)
        try:
            value = self._make(name, path)
        except DigitlabError as exc:
            self._items.pop(name, None)
            self._refused[name] = _Refused(fp, type(exc), str(exc))
            if not isinstance(exc, UserError):
                log.warning("%s %r is not served: %s", self._what, name, exc)
            raise
        self._refused.pop(name, None)
        self._items[name] = _Slot(fp, value)
        return value

    def refresh(self) -> None:
        """Reload the names whose folders changed, drop those whose folders are gone. Blocking."""
        for name in sorted(set(self._items) | set(self._refused)):
            with self._lock(name):
                slot, refused = self._items.get(name), self._refused.get(name)
                known = slot.fingerprint if slot is not None else refused.fingerprint if refused is not None else None
                try:
                    path = model_path(name, self.models_dir)
                    fp = fingerprint(path)
                except (UserError, OSError):
                    if self._items.pop(name, None) is not None:
                        log.warning("%s %r was removed: no longer served", self._what, name)
                    self._refused.pop(name, None)
                    continue
                if fp == known:
                    continue
                try:
                    self._load(name, path)
                except DigitlabError:
                    continue  # logged by _load; requests now get its error
                if slot is not None:
                    log.warning("%s %r changed on disk: reloaded", self._what, name)


def ten_digit_refusal(estimator: DigitClassifier) -> str | None:
    """Why a fitted classifier cannot answer ``/v1/predict`` (it must predict the ten digits), or None."""
    classes = np.asarray(estimator.classes_)
    if classes.shape == (10,) and np.array_equal(classes.astype(np.int64), np.arange(10)):
        return None
    return f"it predicts the classes {classes.tolist()}, not the ten digits 0-9"


def on_model_scale(est: DigitClassifier, X: np.ndarray) -> np.ndarray:
    """``X`` (n, 784) on 0-255, the server's scale, as ``est`` takes it: divided by 255 for a model fitted on 0-1.

    Estimators check the scale at predict (``models._validation.check_scale``): a model fitted on 0-1
    pixels refuses 0-255 ones, so the server converts rather than failing every request.
    """
    if getattr(est, "input_scale_", "0-255") == "0-1":
        return X * np.float32(1 / 255)
    return X


_PROBES = np.zeros((2, 784), dtype=np.float32)
_PROBES[1].reshape(28, 28)[4:24, 12:16] = 255.0  # a vertical bar: a "1"


def check_usable(loaded: LoadedModel) -> None:
    """Refuse a model that loads but cannot answer: run it on two pictures and check what it gives.

    This catches at load time what would otherwise fail or mislead at the first request: arrays of
    the wrong shape, parameters of the wrong type, NaN or infinite weights (non-finite scores).

    Raises
    ------
    ModelError
        One message naming the model and what is wrong.
    """
    name, est = loaded.name, loaded.estimator
    try:
        classes = np.asarray(est.classes_)
    except AttributeError:
        raise ModelError(f"model {name!r} cannot be used: it is not fitted (it has no classes_)") from None
    if classes.ndim != 1 or len(classes) < 1:
        raise ModelError(f"model {name!r} cannot be used: its classes_ are malformed (shape {classes.shape})")
    try:
        scores, probs = est.scores_and_proba(on_model_scale(est, _PROBES.copy()))
    except Exception as exc:  # whatever the estimator raises on files that do not fit together
        raise ModelError(f"model {name!r} cannot be used: its weights or parameters do not fit its card "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    k = len(classes)
    for what, arr in (("scores", scores), ("probabilities", probs)):
        arr = np.asarray(arr)
        if arr.shape != (2, k):
            raise ModelError(f"model {name!r} cannot be used: it gives {what} of shape {arr.shape} for 2 pictures "
                             f"of its {k} classes; its weights do not fit its card")
        if not np.isfinite(arr).all():
            raise ModelError(f"model {name!r} cannot be used: it gives non-finite {what} (NaN or infinite "
                             "weights)")


class ServedModel:
    """A loaded classifier with a lock and a micro-batching queue.

    Parameters
    ----------
    loaded : LoadedModel
        A model of the ten digits (:func:`ten_digit_refusal` is None).
    max_batch : int
        Most images per model call.
    explain_threads : int
        Most explanations computed at once (1 when the estimator is not ``thread_safe``).
    on_inference : callable, optional
        ``on_inference(model, seconds, batch)`` after each model call.
    """

    def __init__(self, loaded: LoadedModel, max_batch: int = 32, explain_threads: int = 1,
                 on_inference: Callable[[str, float, int], None] | None = None) -> None:
        self.loaded = loaded
        self.name = loaded.name
        self.estimator: DigitClassifier = loaded.estimator
        self.lock = threading.Lock()
        # Explanations (tens of ms for a CNN) must not hold up predictions: they take their own slots, so
        # ``explain_threads`` explanations and one prediction batch may run at once. All only read the fitted
        # model; an estimator that cannot bear that declares ``thread_safe = False`` and gets a single lock.
        self.explain_slots: threading.Lock | threading.BoundedSemaphore = (
            threading.BoundedSemaphore(explain_threads) if self.estimator.thread_safe else self.lock)
        self.max_batch = max_batch
        self.on_inference = on_inference
        self._pending: list[tuple[np.ndarray, asyncio.Future[Prediction]]] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None  # referenced so that it is not collected mid-run
        self.detector: NoveltyDetector | None = _detector_of(loaded)

    def flags(self, X: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """``not_a_digit`` of each image of ``X`` (n, 784) given its scores, shape (n,) bool (all False without a
        detector). Blocking; needs no lock (the detector only reads)."""
        if self.detector is None:
            return np.zeros(len(X), dtype=bool)
        return self.detector.flags(X, scores)

    def recognise(self, X: np.ndarray) -> Recognition:
        """Probabilities, not-a-digit probability and flag of ``X`` (n, 784) float32: what ``/v1/read`` asks of
        the model for each candidate digit. Blocking, holds the lock for the model call."""
        from digitlab.read import Recognition

        scores, probs = self.predict_batch(X)
        if self.detector is None:
            return Recognition(probs, np.zeros(len(X)), np.zeros(len(X), dtype=bool))
        nov = self.detector.probability(X, scores)
        return Recognition(probs, nov, nov > self.detector.threshold)

    def predict_batch(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and probabilities of ``X`` (n, 784) float32; both (n, 10) float64. Blocking, holds the lock."""
        t0 = time.perf_counter()
        with self.lock:
            scores, probs = self.estimator.scores_and_proba(on_model_scale(self.estimator, X))
        if self.on_inference is not None:
            self.on_inference(self.name, time.perf_counter() - t0, len(X))
        return scores, probs

    def _predict_and_flag(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores, probs = self.predict_batch(X)
        return scores, probs, self.flags(X, scores)

    def submit(self, x: np.ndarray) -> asyncio.Future[Prediction]:
        """Queue one image ``x`` (784,) float32; the future is answered with concurrent requests' batch.

        Call from the event loop. Cancelling the future drops the image if its batch has not started.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append((x, fut))
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())
        return fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                batch = [(x, f) for x, f in batch if not f.done()]  # drop requests whose client left
                if not batch:
                    continue
                try:
                    scores, probs, flags = await run_in_threadpool(self._predict_and_flag,
                                                                   np.stack([x for x, _ in batch]))
                except Exception as exc:
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                finite = np.isfinite(scores).all(axis=1) & np.isfinite(probs).all(axis=1)
                for i, (_, f) in enumerate(batch):
                    if f.done():
                        continue
                    if finite[i]:
                        f.set_result(Prediction(scores[i], probs[i], bool(flags[i])))
                    else:  # never answered as null probabilities
                        f.set_exception(ModelError(f"model {self.name!r} gave non-finite scores for this input"))
        finally:
            self._draining = False

    def explain(self, x: np.ndarray, digit: int | None) -> Explanation:
        """Per-pixel explanation of ``x`` (784,) for ``digit`` (default: predicted). Blocking, holds an explain slot."""
        from digitlab.explain import explain

        with self.explain_slots:
            picture = on_model_scale(self.estimator, x.reshape(1, 784)).reshape(28, 28)
            return explain(self.estimator, picture.copy(), digit)  # the request's array stays intact


def _detector_of(loaded: LoadedModel) -> NoveltyDetector | None:
    """The not-a-digit detector in a model's folder (None when absent or stale); a broken one is logged, not fatal."""
    from digitlab.novelty import load_detector

    try:
        return load_detector(loaded.path, loaded.name)
    except ModelError as exc:
        log.warning("%s", exc)
        return None


class ModelRegistry:
    """Classifiers by name, each loaded once on first use, reloaded when its folder changes.

    Parameters
    ----------
    models_dir : Path
        Saved models (:func:`digitlab.models.io.list_models`); ``default`` is the bundled model.
    max_batch : int
        Passed to each :class:`ServedModel`.
    torch_threads : int, optional
        Cap on torch's intra-op threads, applied once a loaded model has imported torch.
    freeze_gc : bool, default=False
        After loading a model, ``gc.freeze()`` everything alive (for a server process: short GC pauses).
    explain_threads : int, default=1
        Passed to each :class:`ServedModel`.
    on_inference : callable, optional
        ``on_inference(model, seconds, batch)`` after each model call (the server's metrics).
    """

    def __init__(self, models_dir: Path, max_batch: int = 32, torch_threads: int | None = None,
                 freeze_gc: bool = False, explain_threads: int = 1,
                 on_inference: Callable[[str, float, int], None] | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.freeze_gc = freeze_gc
        self.max_batch = max_batch
        self.explain_threads = explain_threads
        self.torch_threads = torch_threads
        self.on_inference = on_inference
        self._models: _Cache[ServedModel] = _Cache(self.models_dir, self._load, "model")
        self._reported: dict[str, str] = {}  # what the log last said of a broken folder listed by entries()

    @classmethod
    def from_settings(cls, settings: ServeSettings,
                      on_inference: Callable[[str, float, int], None] | None = None) -> ModelRegistry:
        """The registry a server with ``settings`` uses."""
        return cls(settings.models_dir, max_batch=settings.max_batch, torch_threads=settings.torch_threads,
                   freeze_gc=settings.freeze_gc, explain_threads=settings.explain_threads, on_inference=on_inference)

    def loaded(self) -> list[str]:
        """Names of the models loaded so far."""
        return self._models.names()

    def cached(self, name: str) -> ServedModel | None:
        """The model if it is already loaded (no I/O): the fast path of every request."""
        return self._models.cached(name)

    def get(self, name: str) -> ServedModel:
        """Load (once) and return model ``name``. Blocking: call from a worker thread.

        Raises
        ------
        NotFoundError
            No model of that name.
        UserError
            The model does not predict the ten digits (a mixture of some digits, a binary model).
        ModelError
            The model files are unusable; the message says why.
        """
        return self._models.get(name)

    def refresh(self) -> None:
        """Reload the models whose folders changed; stop serving those deleted. Blocking."""
        self._models.refresh()

    def entries(self) -> list[tuple[ModelEntry, str | None]]:
        """Every model that can be used, with why it cannot answer ``/v1/predict`` (None: it can). Blocking.

        Each model is loaded (once) and checked. Models that cannot be used at all (an unreadable
        card, weights that do not fit it) are left out; the server log says why, once per change.
        """
        out: list[tuple[ModelEntry, str | None]] = []
        for entry in list_models(self.models_dir):
            try:
                if entry.card is None:
                    raise ModelError(f"model {entry.name!r} cannot be used: {entry.error}")
                self.get(entry.name)
            except UserError as exc:
                out.append((entry, str(exc).split(": ", 1)[-1]))
            except DigitlabError as exc:
                if self._reported.get(entry.name) != str(exc):
                    self._reported[entry.name] = str(exc)
                    log.warning("left out of the model list: %s", exc)
            else:
                self._reported.pop(entry.name, None)
                out.append((entry, None))
        return out

    def _load(self, name: str, path: Path) -> ServedModel:
        loaded = load_at(name, path)
        check_usable(loaded)
        refusal = ten_digit_refusal(loaded.estimator)
        if refusal is not None:
            raise UserError(f"model {name!r} cannot answer /v1/predict: {refusal}")
        served = ServedModel(loaded, self.max_batch, self.explain_threads, self.on_inference)
        torch = sys.modules.get("torch")
        if torch is not None and self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        if self.freeze_gc:
            # Move everything loaded so far (libraries, weights) out of the garbage collector's reach: full
            # collections then scan only what requests allocate, instead of pausing requests while they walk
            # the ~100k objects of numpy/sklearn/torch/pydantic.
            gc.collect()
            gc.freeze()
        return served


@dataclass(frozen=True)
class Mixture:
    """A loaded Dirichlet-process mixture (``/v1/complete``)."""

    name: str
    estimator: DPMixtureClassifier


class MixtureRegistry:
    """Dirichlet-process mixture models by name, each loaded once, reloaded when its folder changes (thread-safe).

    The mixtures are not ten-digit classifiers (they may be fitted on some digits), so they are kept apart
    from :class:`ModelRegistry`; they are loaded the same way (:func:`load_at`).
    """

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._mixtures: _Cache[Mixture] = _Cache(self.models_dir, self._load, "mixture")

    def default_name(self) -> str:
        """The first mixture by name. Blocking.

        Raises
        ------
        NotFoundError
            The server has no mixture model.
        """
        for entry in list_models(self.models_dir):
            if entry.card is not None and entry.card.model == "dpmm":
                return entry.name
        raise NotFoundError("no Dirichlet-process mixture model on this server; train one with "
                            "'digitlab dpmm fit' (or 'digitlab train dpmm')")

    def get(self, name: str | None) -> Mixture:
        """Load (once) and return the mixture ``name`` (default: the first by name). Blocking.

        Raises
        ------
        NotFoundError
            No model of that name, or no mixture at all.
        UserError
            The model is not a mixture.
        ModelError
            The model files are unusable.
        """
        return self._mixtures.get(name or self.default_name())

    def refresh(self) -> None:
        """Reload the mixtures whose folders changed; forget those deleted. Blocking."""
        self._mixtures.refresh()

    def _load(self, name: str, path: Path) -> Mixture:
        from digitlab.models.dpmm import DPMixtureClassifier

        loaded = load_at(name, path)
        if not isinstance(loaded.estimator, DPMixtureClassifier):
            raise UserError(f"model {name!r} is a {loaded.card.model!r} model; completion needs a "
                            "Dirichlet-process mixture ('dpmm')")
        return Mixture(name, loaded.estimator)
