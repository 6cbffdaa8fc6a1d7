"""Run the server: check the default model, announce the address, start uvicorn with one or more workers.

:func:`run` is what ``digitlab serve`` calls, and what a deployment script can
call too; :func:`url_for` is the address people type into a browser.
"""

from __future__ import annotations

import json
import os
import threading
import webbrowser
from collections.abc import Callable

from digitlab.errors import NotFoundError, UserError
from digitlab.serve.app import SETTINGS_ENV, create_app
from digitlab.serve.registry import ModelRegistry
from digitlab.serve.settings import ServeSettings, settings_to_json

__all__ = ["check_default_model", "run", "url_for"]


def url_for(host: str, port: int) -> str:
    """The page's address for a listening ``host``: the loopback address for a wildcard one."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}/"


def check_default_model(settings: ServeSettings) -> None:
    """Load the default model once, so a missing one fails now with a clear message, not at the first request.

    The models named to compare (``settings.models``, ``digitlab serve --model A --model B``) are checked too.

    Raises
    ------
    UserError
        No model of that name (with how to train one).
    ModelError
        The model's files are unusable.
    """
    registry = ModelRegistry(settings.models_dir)
    for model in dict.fromkeys([settings.default_model, *settings.models]):
        try:
            registry.get(model)
        except NotFoundError as exc:
            hint = "the bundled default model is missing from this installation; " if model == "default" else ""
            raise UserError(f"cannot serve model {model!r}: {hint}{exc}. Train one (e.g. `digitlab train logreg`, "
                            "then `digitlab serve --model logreg`) or pick another with --model") from None


def run(settings: ServeSettings, *, workers: int = 1, log_level: str = "warning", open_browser: bool = False,
        announce: Callable[[str], None] = print) -> None:
    """Serve ``settings`` with uvicorn until interrupted.

    Parameters
    ----------
    settings : ServeSettings
        Where to listen (``host``, ``port``), which models, which limits.
    workers : int, default=1
        Server processes; more than one hands the settings to each worker through ``$DIGITLAB_SERVE_SETTINGS``.
    log_level : str, default="warning"
        uvicorn's log level.
    open_browser : bool, default=False
        Open the page in a browser a second after start.
    announce : callable, default=print
        Called once with a line giving the address.
    """
    import uvicorn

    check_default_model(settings)
    url = url_for(settings.host, settings.port)
    announce(f"MLPaint on {url} (model {settings.default_model!r}; API docs at {url}docs). Ctrl+C stops it.")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    if workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)
    else:
        os.environ[SETTINGS_ENV] = json.dumps(settings_to_json(settings))
        uvicorn.run("digitlab.serve.app:app_from_env", factory=True, workers=workers, host=settings.host,
                    port=settings.port, log_level=log_level)
