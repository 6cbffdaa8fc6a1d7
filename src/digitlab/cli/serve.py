"""``digitlab serve``: run MLPaint, the drawing web app and REST API.

Every server setting and every input limit has a flag (``--request-timeout``,
``--max-body-bytes``, ...) and a ``DIGITLAB_*`` environment variable
(``DIGITLAB_REQUEST_TIMEOUT``, ``DIGITLAB_MAX_BODY_BYTES``, ...); a flag wins over the
variable, the variable over the default. The flags of the settings and limits are
made from :class:`~digitlab.serve.ServeSettings` and :class:`~digitlab.limits.Limits`
(their names, types and documented meanings), so a new limit gets its flag.
"""

from __future__ import annotations

import inspect
import random
import re
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np
import typer

from digitlab.cli._common import DataDirOption, HomeOption, err_console
from digitlab.limits import Limits

__all__ = ["serve_command"]

#: Settings with their own options below, or not for the command line.
_OWN_OPTIONS = frozenset({"data_dir", "models_dir", "limits", "host", "port", "default_model", "cors_origins",
                          "allowed_hosts", "request_log", "freeze_gc"})


def serve_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Model answering requests that name none "
                                                                 "(default default; env DIGITLAB_DEFAULT_MODEL)."),
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
    **settings: Any,
) -> None:
    """Start MLPaint: draw digits in the browser, see every class's score live, and a per-pixel explanation."""
    from digitlab.serve import run, serve_settings

    random.seed(seed)
    np.random.seed(seed)
    given: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    for name, value in (("host", host), ("port", port), ("default_model", model)):
        if value is not None:
            given[name] = value
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


def _setting_options() -> list[inspect.Parameter]:
    """One keyword parameter with its Typer option per server setting and per limit."""
    from digitlab.serve.settings import ServeSettings

    params = []
    for cls, skip in ((ServeSettings, _OWN_OPTIONS), (Limits, frozenset())):
        hints = typing.get_type_hints(cls)
        helps = _documented(cls)
        for f in fields(cls):
            if f.name in skip:
                continue
            flag = f.name.replace("_", "-")
            default = f.default if f.default is not MISSING else None
            text = f"{helps.get(f.name, '')} (default {default}; env DIGITLAB_{f.name.upper()})".strip()
            decls = [f"--{flag}/--no-{flag}"] if hints[f.name] is bool else [f"--{flag}"]
            params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name] | None,
                                            default=typer.Option(None, *decls, help=text, show_default=False)))
    return params


def _install_setting_options() -> None:
    sig = inspect.signature(serve_command, eval_str=True)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    serve_command.__signature__ = sig.replace(parameters=[*own, *_setting_options()])  # type: ignore[attr-defined]


_install_setting_options()
