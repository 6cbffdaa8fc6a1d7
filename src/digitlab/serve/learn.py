"""What the server learns from its users: corrections, personal profiles, and every model side by side.

:class:`Learning` is the one field of :class:`~digitlab.serve.state.AppState`
that holds it: the :class:`~digitlab.corrections.Corrections` service (the
store's ``drawings`` table and the profiles in memory) and the models the
server compares. The routes call three functions:

* :func:`personalise`: a prediction adapted to a profile
  (:meth:`digitlab.profiles.Profile.adapt`); ``/v1/predict`` calls it when a
  request names a ``profile``, and so does ``/v1/read`` once it exists (the
  same call with its own ``served``, ``x`` and prediction);
* :func:`answers`: each of several models' answer to one input (``by_model``);
* :func:`extras`: both, as the fields a ``/v1/predict`` answer adds.

A request without a profile never reaches the profiles: its answer is the
model's own, as on a server that never saw a correction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from digitlab.corrections import Corrections
from digitlab.errors import DigitlabError
from digitlab.profiles import Profile
from digitlab.serve.registry import Prediction, ServedModel, declared_class
from digitlab.serve.schemas import ModelAnswer, PredictRequest
from digitlab.store import Store, store_timeout

if TYPE_CHECKING:
    from digitlab.serve.settings import ServeSettings
    from digitlab.serve.state import AppState

__all__ = ["Learning", "answers", "extras", "personalise", "start"]

log = logging.getLogger("digitlab.serve")


class Learning:
    """The corrections service and the compared models of one application.

    Parameters
    ----------
    settings : ServeSettings
        ``store_path`` (where corrections go; the server waits for a busy store at most
        ``request_timeout`` seconds, or ``$DIGITLAB_STORE_TIMEOUT`` if shorter, then a correction
        stays staged, safe, until the next write),
        ``default_model``, ``models`` and ``serve_all``.
    """

    def __init__(self, settings: ServeSettings) -> None:
        assert settings.store_path is not None  # set by ServeSettings itself
        self.settings = settings
        wait = min(store_timeout(), settings.request_timeout)
        self.corrections = Corrections(Store(settings.store_path, timeout=wait))
        self._served: list[str] | None = None

    def served(self, state: AppState) -> list[str]:
        """The models compared side by side, the default first. Blocking the first time with ``serve_all``.

        With ``serve_all``: every model of the models folder whose card names a ten-digit classifier
        (mixtures left out), and the bundled ``default``.
        """
        if self._served is None:
            names = [self.settings.default_model, *self.settings.models]
            if self.settings.serve_all:
                for entry in state.registry.entries():
                    cls = declared_class(entry.card.model if entry.card is not None else None)
                    if cls is not None and cls.family != "mixture":
                        names.append(entry.name)
            self._served = list(dict.fromkeys(names))
        return self._served


async def start(state: AppState) -> None:
    """Load the compared models at start (the default is loaded by the application itself); failures are logged."""
    learning = state.learning
    names = await state.blocking(learning.served, state)
    for name in names[1:]:
        try:
            await state.model(name)
        except DigitlabError as exc:
            log.warning("model %r not loaded: %s", name, exc)


async def profile_of(state: AppState, name: str) -> Profile:
    """Profile ``name`` as the store holds it: from memory (one ``stat``), else read in a worker thread."""
    corrections = state.learning.corrections
    found = corrections.cached(name)
    return found if found is not None else await state.blocking(corrections.profile, name)


async def personalise(state: AppState, served: ServedModel, x: np.ndarray, pred: Prediction,
                      profile: str) -> tuple[Prediction, Profile]:
    """``pred`` (the model's answer to ``x``, (784,) float32) adapted to ``profile``; the profile too.

    The scores stay the model's own; the probabilities, and so the digit, are adapted. A profile with
    no corrections leaves the prediction as it is.
    """
    held = await profile_of(state, profile)
    if not len(held):
        return pred, held
    proba = await state.on_cpu(held.adapt, served.estimator, x.reshape(1, 784), pred.probabilities.reshape(1, 10))
    return Prediction(pred.scores, proba[0], pred.not_a_digit), held


async def answers(state: AppState, x: np.ndarray | None, models: tuple[str, ...] | Literal["all"],
                  profile: str | None) -> list[ModelAnswer]:
    """Each model's answer to ``x`` (None: nothing drawn), in the order named; ``"all"``: every compared model.

    The models predict concurrently (each in its own micro-batch); each answer's ``elapsed_ms`` is the
    time from the start until it was ready.

    Raises
    ------
    NotFoundError, ModelError
        A model is unknown or unusable.
    """
    names = await state.blocking(state.learning.served, state) if models == "all" else list(models)
    t0 = time.perf_counter()
    served_models = [await state.model(n) for n in names]
    if x is None:
        return [ModelAnswer(model=m.name, elapsed_ms=0.0) for m in served_models]

    async def one(m: ServedModel) -> ModelAnswer:
        pred = await m.submit(x)
        if profile is not None:
            pred, _ = await personalise(state, m, x, pred, profile)
        return ModelAnswer(model=m.name, digit=pred.digit, probability=float(pred.probabilities[pred.digit]),
                           probabilities=pred.probabilities, elapsed_ms=round((time.perf_counter() - t0) * 1000, 3))

    return list(await asyncio.gather(*(one(m) for m in served_models)))


async def extras(state: AppState, req: PredictRequest, served: ServedModel, x: np.ndarray | None,
                 pred: Prediction | None) -> tuple[Prediction | None, dict[str, Any]]:
    """What a ``/v1/predict`` request's ``profile`` and ``models`` add: the adapted prediction and answer fields.

    Returns ``pred`` unchanged and no fields for a request with neither.
    """
    fields: dict[str, Any] = {}
    if req.profile is not None:
        if x is not None and pred is not None:
            pred, held = await personalise(state, served, x, pred, req.profile)
        else:
            held = await profile_of(state, req.profile)
        fields.update(profile=req.profile, profile_drawings=len(held))
    if req.models is not None:
        fields["by_model"] = await answers(state, x, req.models, req.profile)
    return pred, fields
