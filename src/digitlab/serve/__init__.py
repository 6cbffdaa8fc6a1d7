"""MLPaint: the real-time drawing web app and the REST API (FastAPI).

``create_app(serve_settings())`` builds the application; ``digitlab serve`` runs it.

==================  ================================================================
``app``             ``create_app``: state, middleware, error table, routers
``settings``        ``ServeSettings``, one immutable object (its ``limits`` included)
``state``           ``AppState``: what requests share, reached by a dependency
``registry``        the models, loaded once, micro-batched
``schemas``         every request and answer, as pydantic models
``errors``          the one table from library errors to HTTP statuses
``inputs``          request body -> the 784 pixels a model sees
``routes/``         one ``APIRouter`` per resource
``run``             ``run``: check the default model, announce the address, start uvicorn
==================  ================================================================
"""

from __future__ import annotations

from digitlab.serve.app import SETTINGS_ENV, create_app
from digitlab.serve.registry import ModelRegistry
from digitlab.serve.run import run, url_for
from digitlab.serve.settings import ServeSettings, serve_settings, settings_to_json
from digitlab.serve.state import AppState, state_of

__all__ = ["SETTINGS_ENV", "AppState", "ModelRegistry", "ServeSettings", "create_app", "run", "serve_settings",
           "settings_to_json", "state_of", "url_for"]
