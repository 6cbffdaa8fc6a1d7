"""Run the server: check the default model and the address, announce it, start uvicorn with one or more workers.

:func:`run` is what ``digitlab serve`` calls, and what a deployment script can
call too; :func:`url_for` is the address people type into a browser. The
listening socket is bound here, before the address is announced, so a port in
use is one clear error (:class:`~digitlab.errors.UserError`), and uvicorn is
given the connection settings: the idle, header and body deadlines
(:mod:`digitlab.serve.protocol`) and the connection cap.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import inspect
import json
import logging
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from typing import Any, TextIO

from digitlab.errors import DigitlabError, NotFoundError, UserError
from digitlab.serve.app import SETTINGS_ENV, create_app
from digitlab.serve.protocol import GuardedHttpProtocol, set_deadlines
from digitlab.serve.registry import ModelRegistry
from digitlab.serve.settings import ServeSettings, settings_to_json

__all__ = ["LOG_LEVELS", "bind", "check_default_model", "run", "url_for"]

#: uvicorn's log levels, as ``--log-level`` takes them.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def url_for(host: str, port: int) -> str:
    """The page's address for a listening ``host``: the loopback address for a wildcard one, IPv6 in brackets."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
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


def bind(host: str, port: int) -> socket.socket:
    """The listening socket on ``host:port``, bound as uvicorn binds it.

    Raises
    ------
    UserError
        The port is in use, the address is not this machine's, or binding is not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)  # worker processes receive it
    except OSError as exc:
        sock.close()
        where = url_for(host, port).removeprefix("http://").rstrip("/")
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"cannot listen on {where}: the port is in use (another server?); pick another with "
                            "--port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise UserError(f"cannot listen on {where}: not allowed (ports below 1024 need privileges); pick "
                            "another with --port") from None
        raise UserError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    except (OverflowError, ValueError, socket.gaierror) as exc:
        sock.close()
        raise UserError(f"cannot listen on {host!r} port {port}: {exc}") from None
    return sock


class _Formatter(logging.Formatter):
    """``asctime level name: message``, the time text made once per second (strftime per line cost the most)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._text = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._text},{int(record.msecs):03d}"


def _buffered_stderr() -> TextIO:
    """stderr with a 64 kB buffer of its own (Python's is line-buffered), or stderr itself when it has no file."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return sys.stderr
    return open(fd, "w", buffering=1 << 16, closefd=False, encoding="utf-8")


class _BatchedHandler(logging.StreamHandler):
    """Writes lines in batches, at most ``interval`` seconds late: one write per request cost as much as the rest
    of the request log's line."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(_buffered_stderr())
        self.interval = interval
        self._timer: threading.Timer | None = None

    def flush(self) -> None:  # called after each line: arm one timer instead
        if self._timer is None:
            self._timer = threading.Timer(self.interval, self._flush_now)
            self._timer.daemon = True
            self._timer.start()

    def _flush_now(self) -> None:
        with self.lock or contextlib.nullcontext(), contextlib.suppress(ValueError):  # (a stream closed at exit)
            self._timer = None
            super().flush()

    def close(self) -> None:
        self._flush_now()
        super().close()


def _configure_logging(settings: ServeSettings, log_level: str) -> None:
    """digitlab's server log on stderr at ``log_level``; the request log at INFO unless turned off, in batches."""
    level = logging.getLevelName(log_level.upper()) if log_level != "trace" else logging.DEBUG
    formatter = _Formatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    server = logging.getLogger("digitlab.serve")
    server.handlers[:] = [handler]
    server.propagate = False
    server.setLevel(level)
    access = logging.getLogger("digitlab.access")
    batched = _BatchedHandler()
    batched.setFormatter(formatter)
    access.handlers[:] = [batched]
    access.propagate = False
    access.setLevel(logging.INFO if settings.request_log else logging.WARNING)
    atexit.register(batched.close)


def _raise_file_limit(needed: int) -> None:
    """Raise the soft limit on open files towards ``needed`` (the connection cap), within the hard limit."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def run(settings: ServeSettings, *, workers: int = 1, log_level: str = "warning", open_browser: bool = False,
        announce: Callable[[str], None] = print) -> None:
    """Serve ``settings`` with uvicorn until interrupted.

    Parameters
    ----------
    settings : ServeSettings
        Where to listen (``host``, ``port``), which models, which limits and deadlines.
    workers : int, default=1
        Server processes; more than one hands the settings to each worker through ``$DIGITLAB_SERVE_SETTINGS``.
    log_level : str, default="warning"
        uvicorn's and digitlab's log level, one of :data:`LOG_LEVELS`. The request log is separate
        (``settings.request_log``).
    open_browser : bool, default=False
        Open the page in a browser a second after start.
    announce : callable, default=print
        Called once with a line giving the address.

    Raises
    ------
    UserError
        An unknown log level, the port in use, or the default model missing.
    """
    import uvicorn

    if log_level not in LOG_LEVELS:
        raise UserError(f"log level must be one of {', '.join(LOG_LEVELS)}; got {log_level!r}")
    check_default_model(settings)
    sock = bind(settings.host, settings.port)
    _configure_logging(settings, log_level)
    _raise_file_limit(settings.max_connections + 64)
    url = url_for(settings.host, settings.port)
    announce(f"MLPaint on {url} (model {settings.default_model!r}; API docs at {url}docs). Ctrl+C stops it.")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    connection: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "http": GuardedHttpProtocol,
        "timeout_keep_alive": settings.idle_timeout, "limit_concurrency": settings.max_connections,
        "access_log": False, "log_level": log_level}
    deadlines = (settings.header_timeout, settings.body_timeout)
    try:
        if workers == 1:
            server = uvicorn.Server(set_deadlines(uvicorn.Config(create_app(settings), **connection), *deadlines))
            with contextlib.suppress(KeyboardInterrupt):
                server.run(sockets=[sock])
            if not server.started:
                raise DigitlabError("the server did not start; the log above says why")
        else:
            from uvicorn.supervisors import Multiprocess

            os.environ[SETTINGS_ENV] = json.dumps(settings_to_json(settings))
            if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
                # a worker imports digitlab and loads its model before it answers uvicorn's health check: on a
                # busy machine that takes longer than uvicorn's 5 s, and the worker would be killed and restarted
                connection["timeout_worker_healthcheck"] = 60
            config = set_deadlines(uvicorn.Config("digitlab.serve.app:app_from_env", factory=True, workers=workers,
                                                  **connection), *deadlines)
            with contextlib.suppress(KeyboardInterrupt):
                Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
