"""The MLPaint web app and REST API: :func:`create_app` builds the FastAPI application.

It builds the shared state (:class:`~digitlab.serve.state.AppState`),
installs the body-size middleware and the error table
(:mod:`digitlab.serve.errors`), and adds the routes of the routers of
:mod:`digitlab.serve.routes`. Routes are thin: they validate
(:mod:`~digitlab.serve.schemas`), hand CPU work to worker threads and answer
with a response model; they never build an error answer themselves.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from digitlab.errors import DigitlabError
from digitlab.serve import learn
from digitlab.serve.errors import install_error_table
from digitlab.serve.middleware import BodyLimitMiddleware
from digitlab.serve.responses import ModelResponse
from digitlab.serve.routes import ROUTERS
from digitlab.serve.settings import ServeSettings
from digitlab.serve.state import AppState, attach_state, state_of

__all__ = ["SETTINGS_ENV", "app_from_env", "create_app"]

log = logging.getLogger("digitlab.serve")
#: Environment variable carrying the settings (JSON) to worker processes started by uvicorn.
SETTINGS_ENV = "DIGITLAB_SERVE_SETTINGS"


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = state_of(app)
    try:  # load the default model before the first request; failures are reported per request
        await state.model(None)
    except DigitlabError as exc:
        log.warning("default model %r not loaded: %s", state.settings.default_model, exc)
    await learn.start(state)  # the models compared side by side (issue 15)
    yield


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    settings : ServeSettings

    Returns
    -------
    FastAPI
        Serves the page at ``/``, the API under ``/v1``, ``/healthz`` and OpenAPI docs at ``/docs``;
        its :class:`~digitlab.serve.state.AppState` is ``state_of(app)``.
    """
    app = FastAPI(title="digitlab MLPaint API", version="1", lifespan=_lifespan,
                  description="Handwritten digit recognition: draw, upload or send pixels; get the digit, "
                              "every class's score and a per-pixel explanation.",
                  default_response_class=ModelResponse)
    attach_state(app, AppState.build(settings))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_body_bytes)
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
