"""MLPaint: the real-time drawing web app and the REST API (FastAPI).

``create_app(serve_settings())`` builds the application; ``digitlab serve`` runs it.
"""

from __future__ import annotations

from digitlab.serve.app import create_app
from digitlab.serve.settings import ServeSettings, serve_settings

__all__ = ["ServeSettings", "create_app", "serve_settings"]
