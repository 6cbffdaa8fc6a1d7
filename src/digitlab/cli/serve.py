"""``digitlab serve``: run MLPaint, the drawing web app and REST API."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import typer

from digitlab.cli._common import DataDirOption, HomeOption, err_console

__all__ = ["serve_command"]


def serve_command(
    model: list[str] = typer.Option(["default"], "--model", "-m",
                                    help="Model answering requests that name none; repeat it to compare several "
                                         "side by side (the first is the default)."),
    all_models: bool = typer.Option(False, "--all", help="Compare every saved model side by side (the page's "
                                                         "compare view; \"models\": \"all\")."),
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
    from digitlab.serve import run, serve_settings

    random.seed(seed)
    np.random.seed(seed)
    names = list(dict.fromkeys(model)) or ["default"]
    settings = serve_settings(data_dir=data_dir, home=home, host=host, port=port, default_model=names[0],
                              models=tuple(names[1:]), serve_all=all_models)
    run(settings, workers=workers, log_level=log_level, open_browser=not no_browser,
        announce=lambda line: err_console.print(line, highlight=False, soft_wrap=True))
