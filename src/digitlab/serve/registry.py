"""The server's models: each loaded once, lazily, and shared safely by all requests.

:class:`ModelRegistry` loads a classifier on its first use (one thread loads,
the others wait for it) and keeps it. Predictions go through
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
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from digitlab.errors import ModelError, NotFoundError, UserError
from digitlab.models import model_class
from digitlab.models.base import DigitClassifier
from digitlab.models.io import LoadedModel, ModelEntry, list_models, load_model, model_path

if TYPE_CHECKING:
    from digitlab.explain import Explanation
    from digitlab.models.dpmm import DPMixtureClassifier
    from digitlab.novelty import NoveltyDetector
    from digitlab.read import Recognition
    from digitlab.serve.settings import ServeSettings

__all__ = ["Mixture", "MixtureRegistry", "ModelRegistry", "Prediction", "ServedModel", "declared_class",
           "load_named"]

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


def load_named(name: str, models_dir: Path) -> LoadedModel:
    """Load the model ``name`` of ``models_dir`` (or the bundled default). Blocking.

    Raises
    ------
    UserError
        ``name`` breaks the naming rule.
    NotFoundError
        No model of that name.
    ModelError
        The model's files are unusable; the message names the model, not its folder.
    """
    path = model_path(name, models_dir)
    try:
        return load_model(path, name=name)
    except ModelError as exc:
        raise ModelError(f"model {name!r} cannot be used: {str(exc).removeprefix(f'{name}: ')}") from None


class _OncePerName(Generic[T]):
    """Values by name, each made once: concurrent first uses of a name wait for the one thread making it."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._items)

    def cached(self, name: str) -> T | None:
        return self._items.get(name)

    def get(self, name: str, make: Callable[[str], T]) -> T:
        item = self._items.get(name)
        if item is not None:
            return item
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            item = self._items.get(name)
            if item is None:
                item = self._items[name] = make(name)
        return item


class ServedModel:
    """A loaded classifier with a lock and a micro-batching queue.

    Parameters
    ----------
    loaded : LoadedModel
    max_batch : int
        Most images per model call.
    explain_threads : int
        Most explanations computed at once (1 when the estimator is not ``thread_safe``).

    Raises
    ------
    ModelError
        The model does not predict the ten digits 0-9.
    """

    def __init__(self, loaded: LoadedModel, max_batch: int = 32, explain_threads: int = 1) -> None:
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
        self._pending: list[tuple[np.ndarray, asyncio.Future[Prediction]]] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None  # referenced so that it is not collected mid-run
        try:
            classes = np.asarray(self.estimator.classes_)
        except AttributeError:
            raise ModelError(f"model {loaded.name!r} is not fitted (it has no classes_)") from None
        if classes.shape != (10,) or not np.array_equal(classes.astype(np.int64), np.arange(10)):
            raise ModelError(f"model {loaded.name!r} must predict the ten digits 0-9, it has classes "
                             f"{classes.tolist()}")
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
        with self.lock:
            return self.estimator.scores_and_proba(X)

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
                for i, (_, f) in enumerate(batch):
                    if not f.done():
                        f.set_result(Prediction(scores[i], probs[i], bool(flags[i])))
        finally:
            self._draining = False

    def explain(self, x: np.ndarray, digit: int | None) -> Explanation:
        """Per-pixel explanation of ``x`` (784,) for ``digit`` (default: predicted). Blocking, holds an explain slot."""
        from digitlab.explain import explain

        with self.explain_slots:
            return explain(self.estimator, x.reshape(28, 28).copy(), digit)  # the request's array stays intact


def _detector_of(loaded: LoadedModel) -> NoveltyDetector | None:
    """The not-a-digit detector in a model's folder (None when absent or stale); a broken one is logged, not fatal."""
    from digitlab.novelty import load_detector

    try:
        return load_detector(loaded.path, loaded.name)
    except ModelError as exc:
        log.warning("%s", exc)
        return None


class ModelRegistry:
    """Classifiers by name, each loaded once on first use.

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
    """

    def __init__(self, models_dir: Path, max_batch: int = 32, torch_threads: int | None = None,
                 freeze_gc: bool = False, explain_threads: int = 1) -> None:
        self.models_dir = Path(models_dir)
        self.freeze_gc = freeze_gc
        self.max_batch = max_batch
        self.explain_threads = explain_threads
        self.torch_threads = torch_threads
        self._models: _OncePerName[ServedModel] = _OncePerName()

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> ModelRegistry:
        """The registry a server with ``settings`` uses."""
        return cls(settings.models_dir, max_batch=settings.max_batch, torch_threads=settings.torch_threads,
                   freeze_gc=settings.freeze_gc, explain_threads=settings.explain_threads)

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
        ModelError
            The model files are unusable, or the model does not predict the ten digits.
        """
        return self._models.get(name, self._load)

    def entries(self) -> list[ModelEntry]:
        """Every available model, with its card (or why it cannot be read). Blocking."""
        return list_models(self.models_dir)

    def _load(self, name: str) -> ServedModel:
        served = ServedModel(load_named(name, self.models_dir), self.max_batch, self.explain_threads)
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
    """Dirichlet-process mixture models by name, each loaded once (thread-safe).

    The mixtures are not ten-digit classifiers (they may be fitted on some digits), so they are kept apart
    from :class:`ModelRegistry`; they are loaded the same way (:func:`load_named`).
    """

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._mixtures: _OncePerName[Mixture] = _OncePerName()

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
        return self._mixtures.get(name or self.default_name(), self._load)

    def _load(self, name: str) -> Mixture:
        from digitlab.models.dpmm import DPMixtureClassifier

        loaded = load_named(name, self.models_dir)
        if not isinstance(loaded.estimator, DPMixtureClassifier):
            raise UserError(f"model {name!r} is a {loaded.card.model!r} model; completion needs a "
                            "Dirichlet-process mixture ('dpmm')")
        return Mixture(name, loaded.estimator)
