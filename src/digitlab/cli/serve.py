"""``digitlab serve``: run MLPaint, the drawing web app and REST API."""

from __future__ import annotations

import json
import os
import random
import threading
import webbrowser
from pathlib import Path

import numpy as np
import typer

from digitlab.cli._common import DataDirOption, HomeOption, err_console
from digitlab.errors import NotFoundError, UserError

__all__ = ["serve_command"]


def serve_command(
    model: str = typer.Option("default", "--model", "-m", help="Model answering requests that name none."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 to reach it from a phone)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open the page in a browser."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    workers: int = typer.Option(1, min=1, max=64, help="Server processes (each loads the model; one per core "
                                                    "serves the most requests)."),
    seed: int = typer.Option(0, help="Seed for any randomness in the models (predictions are deterministic)."),
    log_level: str = typer.Option("warning", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Start MLPaint: draw digits in the browser, see every class's score live, and a per-pixel explanation."""
    import uvicorn

    from digitlab.serve import create_app, serve_settings
    from digitlab.serve.app import SETTINGS_ENV
    from digitlab.serve.models import ModelRegistry
    from digitlab.serve.settings import settings_to_json

    random.seed(seed)
    np.random.seed(seed)
    settings = serve_settings(data_dir=data_dir, home=home, host=host, port=port, default_model=model)
    try:  # fail now, with a clear message, rather than on the first request
        ModelRegistry(settings.models_dir).get(model)
    except NotFoundError as exc:
        hint = ("the bundled default model is missing from this installation; "
                if model == "default" else "")
        raise UserError(f"cannot serve model {model!r}: {hint}{exc}. Train one (e.g. `digitlab train logreg`, "
                        "then `digitlab serve --model logreg`) or pick another with --model") from None
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    err_console.print(f"MLPaint on [bold]{url}[/bold] (model {model!r}; API docs at {url}docs). Ctrl+C stops it.")
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
    else:
        os.environ[SETTINGS_ENV] = json.dumps(settings_to_json(settings))
        uvicorn.run("digitlab.serve.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level=log_level)
