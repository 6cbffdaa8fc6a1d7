"""The server's models: each loaded once, lazily, and shared safely by all requests.

:class:`ModelRegistry` loads a model on its first use (one thread loads, the
others wait for it) and keeps it. Predictions go through :class:`ServedModel`,
which *micro-batches*: requests arriving while the model is busy are stacked
and answered by one model call, run in a worker thread so the event loop keeps
serving. One prediction batch runs at a time per model, and beside it up to
``explain_threads`` explanations (so slow explanations do not hold up predictions).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from digitlab.errors import ModelError, NotFoundError
from digitlab.models import model_class
from digitlab.models.io import LoadedModel, list_models, load_model, model_path

__all__ = ["ModelRegistry", "Prediction", "ServedModel", "card_accuracy", "model_family"]


@dataclass(frozen=True)
class Prediction:
    """One image's result.

    Attributes
    ----------
    scores : ndarray of float64, shape (10,)
    probabilities : ndarray of float64, shape (10,)
    """

    scores: np.ndarray
    probabilities: np.ndarray

    @property
    def digit(self) -> int:
        """The most probable digit."""
        return int(np.argmax(self.probabilities))


def _softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, k) scores."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class ServedModel:
    """A loaded model with a lock and a micro-batching queue.

    Parameters
    ----------
    loaded : LoadedModel
    max_batch : int
        Most images per model call.
    explain_threads : int
        Most explanations computed at once.
    """

    def __init__(self, loaded: LoadedModel, max_batch: int = 64, explain_threads: int = 1) -> None:
        self.loaded = loaded
        self.name = loaded.name
        self.lock = threading.Lock()
        # Explanations (tens of ms for a CNN) must not hold up predictions: they take their own slots, so
        # ``explain_threads`` explanations and one prediction batch may run at once. All only read the fitted
        # model; an estimator that cannot bear that sets ``thread_safe = False`` and gets a single lock.
        self.explain_slots: threading.Lock | threading.BoundedSemaphore = (
            self.lock if getattr(loaded.estimator, "thread_safe", True) is False
            else threading.BoundedSemaphore(explain_threads))
        self.max_batch = max_batch
        self._pending: list[tuple[np.ndarray, asyncio.Future[Prediction]]] = []
        self._draining = False
        classes = np.asarray(getattr(loaded.estimator, "classes_", np.arange(10)))
        if classes.shape != (10,) or not np.array_equal(classes.astype(np.int64), np.arange(10)):
            raise ModelError(f"model {loaded.name!r} must predict the ten digits 0-9, it has classes {classes.tolist()}")
        self._proba_is_softmax = self._check_softmax()

    @property
    def estimator(self) -> Any:
        """The fitted estimator."""
        return self.loaded.estimator

    def _check_softmax(self) -> bool:
        """Whether ``predict_proba`` is the softmax of ``scores`` (checked on probe images): then one call gives both."""
        rng = np.random.default_rng(0)
        probe = np.concatenate([np.zeros((1, 784)), rng.integers(0, 256, (3, 784))]).astype(np.float32)
        with self.lock:
            scores = np.asarray(self.estimator.scores(probe), dtype=np.float64)
            probs = np.asarray(self.estimator.predict_proba(probe), dtype=np.float64)
        return bool(scores.shape == probs.shape and np.allclose(_softmax(scores), probs, rtol=1e-5, atol=1e-7))

    def predict_batch(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and probabilities of ``X`` (n, 784) float32; both (n, 10). Blocking, holds the lock."""
        with self.lock:
            scores = np.asarray(self.estimator.scores(X), dtype=np.float64)
            probs = (_softmax(scores) if self._proba_is_softmax
                     else np.asarray(self.estimator.predict_proba(X), dtype=np.float64))
        return scores, probs

    def submit(self, x: np.ndarray) -> asyncio.Future[Prediction]:
        """Queue one image ``x`` (784,) float32; the future is answered with concurrent requests' batch.

        Call from the event loop. Cancelling the future drops the image if its batch has not started.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append((x, fut))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return fut

    async def predict(self, x: np.ndarray) -> Prediction:
        """Predict one image ``x`` (784,) float32, batched with concurrent requests."""
        return await self.submit(x)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                batch = [(x, f) for x, f in batch if not f.done()]  # drop requests whose client left
                if not batch:
                    continue
                try:
                    scores, probs = await run_in_threadpool(self.predict_batch, np.stack([x for x, _ in batch]))
                except Exception as exc:
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for i, (_, f) in enumerate(batch):
                    if not f.done():
                        f.set_result(Prediction(scores[i], probs[i]))
        finally:
            self._draining = False

    def explain(self, x: np.ndarray, digit: int | None) -> Any:
        """Per-pixel explanation of ``x`` (784,) for ``digit`` (default: predicted). Blocking, holds an explain slot."""
        from digitlab.explain import explain

        with self.explain_slots:
            return explain(self.estimator, x.reshape(28, 28).copy(), digit)  # the request's array stays intact


def model_family(card: dict[str, Any]) -> str | None:
    """The family of the model a card describes (``DigitClassifier.family``), or None if unknown."""
    try:
        return str(model_class(str(card.get("model"))).family)
    except (NotFoundError, ImportError, AttributeError):
        return None


def card_accuracy(card: dict[str, Any]) -> float | None:
    """Test accuracy recorded on a model card, if any."""
    candidates = [card.get("test_accuracy")]
    for key in ("metrics", "test", "test_metrics", "card"):
        sub = card.get(key)
        if isinstance(sub, dict):
            candidates += [sub.get("test_accuracy"), sub.get("accuracy")]
            if isinstance(sub.get("test"), dict):
                candidates.append(sub["test"].get("accuracy"))
    for c in candidates:
        if isinstance(c, (int, float)) and not isinstance(c, bool):
            return float(c)
    return None


class ModelRegistry:
    """Models by name, each loaded once on first use.

    Parameters
    ----------
    models_dir : Path
        Saved models (``digitlab.models.io.list_models``); ``default`` is the bundled model.
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
        self._models: dict[str, ServedModel] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def loaded(self) -> list[str]:
        """Names of the models loaded so far."""
        return sorted(self._models)

    def cached(self, name: str) -> ServedModel | None:
        """The model if it is already loaded (no I/O): the fast path of every request."""
        return self._models.get(name)

    def get(self, name: str) -> ServedModel:
        """Load (once) and return model ``name``. Blocking: call from a worker thread.

        Raises
        ------
        NotFoundError
            No model of that name.
        ModelError
            The model files are unusable.
        """
        served = self._models.get(name)
        if served is not None:
            return served
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            served = self._models.get(name)
            if served is None:
                path = model_path(name, self.models_dir)
                served = ServedModel(load_model(path, name=name), self.max_batch, self.explain_threads)
                torch = sys.modules.get("torch")
                if torch is not None and self.torch_threads:
                    torch.set_num_threads(self.torch_threads)
                if self.freeze_gc:
                    # Move everything loaded so far (libraries, weights) out of the garbage collector's reach:
                    # full collections then scan only what requests allocate, instead of pausing requests
                    # for ~80 ms while they walk the ~100k objects of numpy/sklearn/torch/pydantic.
                    gc.collect()
                    gc.freeze()
                self._models[name] = served
        return served

    def infos(self) -> list[dict[str, Any]]:
        """Name, family, registered type and test accuracy of every available model."""
        out = []
        for card in list_models(self.models_dir):
            out.append({"name": card["name"], "family": model_family(card), "model_type": card.get("model"),
                        "test_accuracy": card_accuracy(card)})
        return out
