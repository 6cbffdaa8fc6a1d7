"""``digitlab serve``: run MLPaint, the drawing web app and REST API.

Every server setting and every input limit has a flag (``--request-timeout``,
``--max-body-bytes``, ...) and a ``DIGITLAB_*`` environment variable
(``DIGITLAB_REQUEST_TIMEOUT``, ``DIGITLAB_MAX_BODY_BYTES``, ...); a flag wins over the
variable, the variable over the default. The limits' flags are made from
:class:`~digitlab.limits.Limits` (their names, types and documented meanings), so a new
limit gets its flag; the server's settings are declared here (importing
:mod:`digitlab.serve` would load FastAPI for every command), and a test checks that each
:class:`~digitlab.serve.ServeSettings` field has its flag.
"""

from __future__ import annotations

import inspect
import random
import re
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import typer

from digitlab.cli._common import DataDirOption, HomeOption, err_console
from digitlab.limits import Limits

__all__ = ["serve_command"]

_ENV = "env DIGITLAB_"


def serve_command(
    model: list[str] | None = typer.Option(
        None, "--model", "-m", help="Model answering requests that name none (default default; env "
                                    "DIGITLAB_DEFAULT_MODEL); repeat it to compare several side by side (the first "
                                    "is the default; env DIGITLAB_MODELS for the others, comma-separated)."),
    all_models: bool = typer.Option(False, "--all", help="Compare every saved model side by side (the page's "
                                                         "compare view; \"models\": \"all\"; env DIGITLAB_SERVE_ALL)."),
    host: str | None = typer.Option(None, help="Address to listen on (0.0.0.0 to reach it from a phone) "
                                               "(default 127.0.0.1; env DIGITLAB_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port to listen on (default 8000; env "
                                                                 "DIGITLAB_PORT)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open the page in a browser."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    workers: int = typer.Option(1, min=1, max=64, help="Server processes (each loads the model; one per core "
                                                    "serves the most requests)."),
    seed: int = typer.Option(0, help="Seed for any randomness in the models (predictions are deterministic)."),
    log_level: str = typer.Option("warning", help="Log level: critical, error, warning, info, debug or trace."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No request log (one line per request otherwise; "
                                                            "env DIGITLAB_REQUEST_LOG=false)."),
    cors_origin: list[str] | None = typer.Option(
        None, "--cors-origin", help="An origin whose pages may call the API (CORS), e.g. https://example.org, or * "
                                    "for any; repeatable (env DIGITLAB_CORS_ORIGINS, comma-separated)."),
    allowed_host: list[str] | None = typer.Option(
        None, "--allowed-host", help="A host name to accept in the Host header besides localhost, 127.0.0.1, [::1] "
                                     "and the listening host (a guard against DNS rebinding), or * for any; "
                                     "repeatable (env DIGITLAB_ALLOWED_HOSTS, comma-separated)."),
    request_timeout: float | None = typer.Option(None, help="Seconds a prediction may take before it answers 503 "
                                                           f"(default 10; {_ENV}REQUEST_TIMEOUT)."),
    idle_timeout: float | None = typer.Option(None, help="Seconds a connection may stay silent, before its first "
                                                        "request or between requests (default 5; "
                                                        f"{_ENV}IDLE_TIMEOUT)."),
    header_timeout: float | None = typer.Option(None, help="Seconds from a request's first byte to the end of its "
                                                          f"headers (default 10; {_ENV}HEADER_TIMEOUT)."),
    body_timeout: float | None = typer.Option(None, help="Seconds from a request's headers to the end of its body "
                                                        f"(default 30; {_ENV}BODY_TIMEOUT)."),
    max_connections: int | None = typer.Option(None, help="Most open connections; beyond, requests answer 503 "
                                                         f"(default 2048; {_ENV}MAX_CONNECTIONS)."),
    max_batch: int | None = typer.Option(None, help="Most concurrent predictions in one model call (default 32; "
                                                   f"{_ENV}MAX_BATCH)."),
    torch_threads: int | None = typer.Option(None, help=f"Torch's intra-op threads (default 1; {_ENV}TORCH_THREADS)."),
    preprocess_threads: int | None = typer.Option(None, help="Threads decoding small pictures and drawings "
                                                            f"(default: one per core; {_ENV}PREPROCESS_THREADS)."),
    heavy_threads: int | None = typer.Option(None, help="Threads, at a lower priority, for large pictures, long "
                                                       f"drawings and large bodies (default 1; {_ENV}HEAVY_THREADS)."),
    heavy_queue: int | None = typer.Option(None, help="Most expensive requests waiting; beyond, 503 (default 64; "
                                                     f"{_ENV}HEAVY_QUEUE)."),
    explain_threads: int | None = typer.Option(None, help="Explanations computed at once per model (default: one "
                                                         f"per core; {_ENV}EXPLAIN_THREADS)."),
    preload: bool | None = typer.Option(None, "--preload/--no-preload", help="Load and check every model at start "
                                        f"(/readyz answers ready after), or at first use (default: preload; "
                                        f"{_ENV}PRELOAD)."),
    reload_interval: float | None = typer.Option(None, help="Seconds between checks of the models folder for "
                                                           "retrained or deleted models; 0: off (default 1; "
                                                           f"{_ENV}RELOAD_INTERVAL)."),
    **limits: Any,
) -> None:
    """Start MLPaint: draw digits in the browser, see every class's score live, and a per-pixel explanation."""
    from digitlab.serve import run, serve_settings

    random.seed(seed)
    np.random.seed(seed)
    names = list(dict.fromkeys(model or ()))
    options = {"host": host, "port": port, "default_model": names[0] if names else None,
               "models": tuple(names[1:]) or None, "serve_all": all_models or None,
               "request_timeout": request_timeout,
               "idle_timeout": idle_timeout, "header_timeout": header_timeout, "body_timeout": body_timeout,
               "max_connections": max_connections, "max_batch": max_batch, "torch_threads": torch_threads,
               "preprocess_threads": preprocess_threads, "heavy_threads": heavy_threads, "heavy_queue": heavy_queue,
               "explain_threads": explain_threads, "preload": preload, "reload_interval": reload_interval, **limits}
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if quiet:
        given["request_log"] = False
    if cors_origin:
        given["cors_origins"] = tuple(cors_origin)
    if allowed_host:
        given["allowed_hosts"] = tuple(allowed_host)
    resolved = serve_settings(data_dir=data_dir, home=home, **given)
    run(resolved, workers=workers, log_level=log_level.lower(), open_browser=not no_browser,
        announce=lambda line: err_console.print(line, highlight=False, soft_wrap=True))


def _documented(cls: type) -> dict[str, str]:
    """The numpydoc ``Attributes`` of ``cls``: name -> first sentence of its description."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    names: list[str] = []
    for line in doc.split("Attributes\n----------\n", 1)[-1].splitlines():
        head = re.match(r"^(\w[\w, ]*) : ", line)
        if head:
            names = [n.strip() for n in head.group(1).split(",")]
        elif line.startswith("    ") and names:
            for n in names:
                out[n] = (out.get(n, "") + " " + line.strip()).strip()
        elif line and not line.startswith(" "):
            break
    plain = {k: v.replace("``", "").replace("*", "") for k, v in out.items()}  # reST marks: not for a terminal
    return {k: v.split(". ")[0].rstrip(".") + "." for k, v in plain.items()}


def _limit_options() -> list[inspect.Parameter]:
    """One keyword parameter with its Typer option per input limit (:class:`~digitlab.limits.Limits`)."""
    params = []
    hints = typing.get_type_hints(Limits)
    helps = _documented(Limits)
    for f in fields(Limits):
        text = f"{helps.get(f.name, '')} (default {f.default}; {_ENV}{f.name.upper()})".strip()
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name] | None,
                                        default=typer.Option(None, f"--{f.name.replace('_', '-')}", help=text,
                                                             show_default=False)))
    return params


def _install_setting_options() -> None:
    sig = inspect.signature(serve_command, eval_str=True)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    serve_command.__signature__ = sig.replace(parameters=[*own, *_limit_options()])  # type: ignore[attr-defined]


_install_setting_options()
