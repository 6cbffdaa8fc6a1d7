"""The MLPaint web app and REST API: :func:`create_app` builds the FastAPI application.

It builds the shared state (:class:`~digitlab.serve.state.AppState`), installs
the server's middleware (:class:`~digitlab.serve.middleware.ServeMiddleware`:
Host check, body limit, last-resort 500, metrics and request log; CORS when
origins are set) and the error table (:mod:`digitlab.serve.errors`), and adds
the routes of the routers of :mod:`digitlab.serve.routes`. Routes are thin:
they validate (:mod:`~digitlab.serve.schemas`), hand CPU work to worker
threads and answer with a response model; they never build an error answer
themselves.

At start (the lifespan) the default model is loaded; then, in the background,
every model is loaded and checked (``preload``; ``GET /readyz`` answers ready
after), and every ``reload_interval`` seconds the models folder is checked for
models that changed or were deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from digitlab.errors import DigitlabError
from digitlab.serve import learn
from digitlab.serve.errors import install_error_table, internal_answer, public_detail
from digitlab.serve.middleware import HostRule, ServeMiddleware
from digitlab.serve.responses import ModelResponse
from digitlab.serve.routes import ROUTERS
from digitlab.serve.settings import ServeSettings
from digitlab.serve.state import AppState, attach_state, state_of

__all__ = ["SETTINGS_ENV", "app_from_env", "create_app"]

log = logging.getLogger("digitlab.serve")
#: Environment variable carrying the settings (JSON) to worker processes started by uvicorn.
SETTINGS_ENV = "DIGITLAB_SERVE_SETTINGS"


async def _default_model(state: AppState) -> bool:
    """Load the default model; False (and the reason in the readiness detail and the log) when it cannot be."""
    try:
        await state.model(None)
    except DigitlabError as exc:
        reason = public_detail(str(exc), {str(state.settings.models_dir): "models_dir"})
        state.readiness.detail = f"the default model {state.settings.default_model!r} cannot be used: {reason}"
        log.warning("%s", state.readiness.detail)
        return False
    return True


async def _prepare(state: AppState, default_ok: bool) -> None:
    """Load and check every model (when ``preload``), then declare the application ready."""
    if state.settings.preload:
        try:
            await state.blocking(state.registry.entries)
        except Exception as exc:  # a failure here must not stop the server; requests report their own
            log.error("checking the models failed: %s: %s", type(exc).__name__, exc)
    state.readiness.prepared = True
    if default_ok:
        _ready(state)


def _ready(state: AppState) -> None:
    n = len(state.registry.loaded())
    state.readiness.set(f"{n} model{'s' if n != 1 else ''} loaded")


async def _watch(state: AppState) -> None:
    """Every ``reload_interval`` seconds: reload changed models, drop deleted ones; retry a failed default."""
    while True:
        await asyncio.sleep(state.settings.reload_interval)
        try:
            await state.blocking(state.registry.refresh)
            await state.blocking(state.mixtures.refresh)
            if state.readiness.prepared and not state.readiness.ready and await _default_model(state):
                _ready(state)
        except Exception as exc:  # keep watching whatever one check met
            log.error("checking the models folder failed: %s: %s", type(exc).__name__, exc)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = state_of(app)
    default_ok = await _default_model(state)
    await learn.start(state)  # the models compared side by side (issue 15)
    tasks = [asyncio.create_task(_prepare(state, default_ok))]
    if state.settings.reload_interval > 0:
        tasks.append(asyncio.create_task(_watch(state)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        state.close()


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    settings : ServeSettings

    Returns
    -------
    FastAPI
        Serves the page at ``/``, the API under ``/v1``, ``/healthz``, ``/readyz``, ``/metrics`` and OpenAPI
        docs at ``/docs``; its :class:`~digitlab.serve.state.AppState` is ``state_of(app)``.
    """
    app = FastAPI(title="digitlab MLPaint API", version="1", lifespan=_lifespan, docs_url=None, redoc_url=None,
                  description="Handwritten digit recognition: draw, upload or send pixels; get the digit, "
                              "every class's score and a per-pixel explanation.",
                  default_response_class=ModelResponse)
    state = AppState.build(settings)
    attach_state(app, state)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["*"], max_age=600)
    app.add_middleware(ServeMiddleware, max_bytes=settings.limits.max_body_bytes,  # outermost: sees every answer
                       hosts=HostRule(settings.host, settings.allowed_hosts), metrics=state.metrics,
                       on_error=internal_answer, request_log=settings.request_log)
    install_error_table(app)
    for router in ROUTERS:
        # The routers' routes are added as they are (their tags, responses and response class were set when they
        # were declared), not through include_router: FastAPI 0.16x matches an included router by nesting, which
        # cost a pixels request ~50 us more event-loop time, 15 % of it (docs/serve.md).
        app.router.routes.extend(router.routes)
    return app


def app_from_env() -> FastAPI:
    """Application factory for uvicorn worker processes: settings from ``$DIGITLAB_SERVE_SETTINGS`` (JSON)."""
    import json
    import os

    from digitlab.serve.settings import settings_from_json

    return create_app(settings_from_json(json.loads(os.environ[SETTINGS_ENV])))
