"""What one application shares between requests, in one typed object: :class:`AppState`.

``create_app`` builds it and keeps it on ``app.state``; routes receive it
through the FastAPI dependency :data:`AppStateDep` (``state: AppStateDep``),
never through closures or globals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
import numpy as np
from fastapi import Depends, Request
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from digitlab.errors import DataNotFoundError
from digitlab.serve.learn import Learning
from digitlab.serve.registry import MixtureRegistry, ModelRegistry, ServedModel
from digitlab.serve.settings import ServeSettings

__all__ = ["AppState", "AppStateDep", "MnistTestSet", "get_state", "state_of"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_KEY = "digitlab"


class MnistTestSet:
    """The MNIST test images and labels, read once on first use (``GET /v1/samples``)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.data_dir = settings.data_dir
        self._lock = threading.Lock()
        self._data: tuple[np.ndarray, np.ndarray] | None = None

    def get(self) -> tuple[np.ndarray, np.ndarray]:
        """Images (10000, 28, 28) uint8 and labels (10000,). Blocking.

        Raises
        ------
        DataNotFoundError
            MNIST is not in the server's data folder.
        """
        with self._lock:
            if self._data is None:
                from digitlab.data import load_mnist

                try:
                    self._data = load_mnist(self.data_dir, "test")
                except DataNotFoundError:
                    raise DataNotFoundError("MNIST is not available on this server: its data folder (setting "
                                            "data_dir) does not hold the MNIST files; run `digitlab data fetch` "
                                            "or set DIGITLAB_DATA") from None
            return self._data


@dataclass(frozen=True)
class AppState:
    """Settings, models, thread limits and caches of one application.

    Attributes
    ----------
    settings : ServeSettings
    registry : ModelRegistry
        The classifiers of ``/v1/predict``.
    mixtures : MixtureRegistry
        The mixtures of ``/v1/complete``.
    mnist : MnistTestSet
    cpu : anyio.CapacityLimiter
        Worker threads for CPU-bound input work (decoding, normalising, parsing large bodies): as many as
        there are cores, since more only fight over the GIL and stretch everyone's latency.
    learning : Learning
        Corrections, personal profiles and the models compared side by side (:mod:`digitlab.serve.learn`).
    """

    settings: ServeSettings
    registry: ModelRegistry
    mixtures: MixtureRegistry
    mnist: MnistTestSet
    cpu: anyio.CapacityLimiter
    learning: Learning

    @classmethod
    def build(cls, settings: ServeSettings) -> AppState:
        """The state of a new application with ``settings`` (nothing loaded yet)."""
        return cls(settings=settings, registry=ModelRegistry.from_settings(settings),
                   mixtures=MixtureRegistry(settings.models_dir), mnist=MnistTestSet(settings),
                   cpu=anyio.CapacityLimiter(settings.preprocess_threads), learning=Learning(settings))

    async def on_cpu(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run CPU-bound ``fn(*args)`` in one of the :attr:`cpu` worker threads."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.cpu)

    async def blocking(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run blocking I/O ``fn(*args)`` (loading a model, listing cards) in the default thread pool."""
        return await run_in_threadpool(fn, *args)

    async def model(self, name: str | None) -> ServedModel:
        """The classifier ``name`` (default: the settings' default model), loaded on first use.

        Raises
        ------
        NotFoundError, ModelError
            As :meth:`ModelRegistry.get`.
        """
        name = name or self.settings.default_model
        served = self.registry.cached(name)
        return served if served is not None else await self.blocking(self.registry.get, name)


def state_of(app: Starlette) -> AppState:
    """The :class:`AppState` of an application made by ``create_app``."""
    state = getattr(app.state, _KEY)
    assert isinstance(state, AppState)
    return state


def attach_state(app: Starlette, state: AppState) -> None:
    """Keep ``state`` on ``app`` (done once, by ``create_app``)."""
    setattr(app.state, _KEY, state)


async def get_state(request: Request) -> AppState:
    """FastAPI dependency: the state of the application answering ``request`` (async: no thread hop)."""
    return state_of(request.app)


#: A route parameter ``state: AppStateDep`` receives the application's :class:`AppState`.
AppStateDep = Annotated[AppState, Depends(get_state)]
