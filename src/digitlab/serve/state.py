"""What one application shares between requests, in one typed object: :class:`AppState`.

``create_app`` builds it and keeps it on ``app.state``; routes receive it
through the FastAPI dependency :data:`AppStateDep` (``state: AppStateDep``),
never through closures or globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, TypeVarTuple

import numpy as np
from fastapi import Depends, Request
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from digitlab.errors import DataNotFoundError, DigitlabError
from digitlab.serve.learn import Learning
from digitlab.serve.metrics import Metrics
from digitlab.serve.registry import MixtureRegistry, ModelRegistry, ServedModel
from digitlab.serve.settings import ServeSettings

__all__ = ["AppState", "AppStateDep", "BusyError", "Lane", "MnistTestSet", "Readiness", "get_state", "state_of"]

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


class BusyError(DigitlabError):
    """The server has more expensive requests waiting than it takes (setting ``heavy_queue``): HTTP 503."""


class Lane:
    """Worker threads for one kind of work, with a bounded number of waiting jobs.

    Parameters
    ----------
    name : str
        Names the threads (``digitlab-NAME``).
    threads : int
    queue : int, optional
        Most jobs waiting for a thread; one more raises :class:`BusyError`. None: unbounded.
    nice : int, default=0
        Added to the threads' scheduling niceness (Linux, where a thread has its own): a lane of
        expensive work at a higher niceness leaves the cores to the event loop and small requests.
    """

    def __init__(self, name: str, threads: int, queue: int | None = None, nice: int = 0) -> None:
        self.name = name
        self.queue = queue
        self._threads = threads
        self._waiting = 0
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"digitlab-{name}",
                                        initializer=functools.partial(_renice, nice) if nice else None)

    @property
    def waiting(self) -> int:
        """Jobs submitted and not finished."""
        return self._waiting

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """``fn(*args)`` in one of the lane's threads; cancelling the caller drops a job not yet started.

        Raises
        ------
        BusyError
            More than ``queue`` jobs are already waiting.
        """
        if self.queue is not None and self._waiting >= self._threads + self.queue:
            raise BusyError(f"the server is busy: {self._waiting} expensive requests (large pictures or drawings) "
                            f"are in progress or waiting (setting heavy_queue = {self.queue}); retry later")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        """Let running jobs finish; drop waiting ones."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _renice(nice: int) -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: the default priority
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)


class Readiness:
    """Whether the application has loaded its models (``GET /readyz``)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.detail = "loading the models"
        self.prepared = False  # the start-up loading is over (ready or not)

    @property
    def ready(self) -> bool:
        return self._event.is_set()

    def set(self, detail: str) -> None:
        self.detail = detail
        self._event.set()


@dataclass(frozen=True)
class AppState:
    """Settings, models, thread lanes, metrics and caches of one application.

    Attributes
    ----------
    settings : ServeSettings
    registry : ModelRegistry
        The classifiers of ``/v1/predict``.
    mixtures : MixtureRegistry
        The mixtures of ``/v1/complete``.
    mnist : MnistTestSet
    fast : Lane
        Threads for small input work (a canvas-sized picture, a short drawing, a mid-sized body):
        ``preprocess_threads`` of them.
    heavy : Lane
        Threads for expensive input work (large pictures, long drawings, large bodies):
        ``heavy_threads`` at a lower priority, at most ``heavy_queue`` waiting. Kept apart so that
        expensive requests cannot starve small ones.
    metrics : Metrics
        The Prometheus metrics of ``GET /metrics``.
    readiness : Readiness
    learning : Learning
        Corrections, personal profiles and the models compared side by side (:mod:`digitlab.serve.learn`).
    """

    settings: ServeSettings
    registry: ModelRegistry
    mixtures: MixtureRegistry
    mnist: MnistTestSet
    fast: Lane
    heavy: Lane
    metrics: Metrics
    learning: Learning
    readiness: Readiness = field(default_factory=Readiness)

    @classmethod
    def build(cls, settings: ServeSettings) -> AppState:
        """The state of a new application with ``settings`` (nothing loaded yet)."""
        metrics = Metrics()
        return cls(settings=settings, registry=ModelRegistry.from_settings(settings, metrics.observe_inference),
                   mixtures=MixtureRegistry(settings.models_dir), mnist=MnistTestSet(settings),
                   fast=Lane("fast", settings.preprocess_threads),
                   heavy=Lane("heavy", settings.heavy_threads, queue=settings.heavy_queue, nice=10),
                   metrics=metrics, learning=Learning(settings))

    async def on_cpu(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run small CPU-bound work ``fn(*args)`` in the :attr:`fast` lane."""
        return await self.fast.run(fn, *args)

    async def on_heavy(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run expensive CPU-bound work ``fn(*args)`` in the :attr:`heavy` lane (:class:`BusyError` when full)."""
        return await self.heavy.run(fn, *args)

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

    def close(self) -> None:
        """Stop the worker threads (at the application's shutdown)."""
        self.fast.close()
        self.heavy.close()


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
