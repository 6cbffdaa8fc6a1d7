"""ASGI middleware of the server: :class:`ServeMiddleware`, what every request goes through before its route.

One pure-ASGI layer does, in order:

1. **Host check** (DNS rebinding): the ``Host`` header must name this server:
   ``localhost``, ``127.0.0.1``, ``[::1]``, the listening host, any IP address
   when listening on all interfaces, or one of the ``allowed_hosts``; others
   get 400.
2. **Body limit**: a declared ``Content-Length`` over ``max_body_bytes`` is
   answered 413 at once; a streamed body is counted as it arrives and the read
   that crosses the limit raises ``HTTPException(413)``, which FastAPI passes
   through body parsing to the error table (:mod:`digitlab.serve.errors`).
3. **Last resort**: an exception no handler took becomes a 500 JSON answer and
   one log line (Starlette's own would re-raise it, and uvicorn would log a
   traceback).
4. **Metrics and the request log**: each answer is counted
   (:class:`~digitlab.serve.metrics.Metrics`) and, with ``request_log``,
   logged as one line on ``digitlab.access``: method, path, status,
   milliseconds and the model that answered (set by the route as
   ``scope[MODEL_KEY]``).

They are one layer because each pure-ASGI layer costs event-loop time on
every request, the cheapest ones included.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.serve.metrics import Metrics
from digitlab.serve.responses import error_response

__all__ = ["MODEL_KEY", "HostRule", "ServeMiddleware"]

#: ``scope`` key under which a route names the model that answered (for the request log).
MODEL_KEY = "digitlab.model"
log = logging.getLogger("digitlab.serve")
access_log = logging.getLogger("digitlab.access")
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})


class HostRule:
    """Which ``Host`` header values a server listening on ``host`` accepts (see the module's docstring).

    Parameters
    ----------
    host : str
        The listening address.
    allowed : iterable of str
        More host names; ``*`` accepts any.
    """

    def __init__(self, host: str, allowed: Iterable[str] = ()) -> None:
        extra = {_bare(h) for h in allowed}
        self.any = "*" in extra
        self.any_ip = host in _WILDCARDS
        self.names = frozenset(_LOCAL | {_bare(host)} | extra) - {""}
        self._seen: dict[bytes, bool] = {}

    def accepts(self, header: bytes) -> bool:
        """Whether the raw ``Host`` header value (with or without a port) is served here."""
        if self.any:
            return True
        known = self._seen.get(header)
        if known is not None:
            return known
        name = _bare(_without_port(header.decode("latin-1")))
        ok = name in self.names
        if not ok and self.any_ip:
            try:
                ipaddress.ip_address(name)
                ok = True
            except ValueError:
                ok = False
        if len(self._seen) < 256:  # the usual few values are remembered; a flood of others is not
            self._seen[header] = ok
        return ok

    def describe(self) -> str:
        """The accepted names, for the refusal's message."""
        shown = sorted(f"[{n}]" if ":" in n else n for n in self.names)
        return ", ".join(shown) + (", any IP address" if self.any_ip else "")


def _without_port(value: str) -> str:
    value = value.strip()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _bare(host: str) -> str:
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


class ServeMiddleware:
    """Host check, body limit, last-resort 500, metrics and request log (see the module's docstring).

    Parameters
    ----------
    app : ASGIApp
    max_bytes : int
        Largest request body.
    hosts : HostRule
    metrics : Metrics
    on_error : callable
        ``on_error(scope, exc)``: the 500 answer for an exception no handler took.
    request_log : bool
        Log a line per request on ``digitlab.access`` (at INFO).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, hosts: HostRule, metrics: Metrics,
                 on_error: Callable[[Scope, Exception], Response], request_log: bool = True) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.hosts = hosts
        self.metrics = metrics
        self.on_error = on_error
        self.request_log = request_log
        self._too_large = f"request body is larger than the limit of {max_bytes} bytes (setting max_body_bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_status)
                return
            try:
                await self.app(scope, self._limited(receive), send_status)
            except Exception as exc:
                if status == 0:
                    await self.on_error(scope, exc)(scope, receive, send_status)
                else:
                    log.error("%s %s failed after its answer began: %s: %s", scope["method"], scope["path"],
                              type(exc).__name__, exc)
        finally:
            self.metrics.in_progress.dec()
            seconds = time.perf_counter() - t0
            route = scope.get("route")
            self.metrics.observe_request(scope["method"], getattr(route, "path", "unmatched"), status, seconds)
            if self.request_log and access_log.isEnabledFor(logging.INFO):
                model = scope.get(MODEL_KEY)
                path = scope.get("raw_path", b"").decode("ascii", "backslashreplace")[:200] or scope["path"]
                # made and handled directly: Logger.info would look up its caller's frame for each line
                access_log.handle(access_log.makeRecord(
                    access_log.name, logging.INFO, "", 0, "%s %s %d %.1f ms%s",
                    (scope["method"], path, status, seconds * 1000, f" model={model}" if model else ""), None))

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer for a request refused before its route: a foreign Host or a declared body too large."""
        for key, value in scope["headers"]:
            if key == b"host":
                if not self.hosts.accepts(value):
                    name = value.decode("latin-1")[:100]
                    return error_response(400, f"Host {name!r} is not served here (this server answers to "
                                               f"{self.hosts.describe()}); add a name with --allowed-host or "
                                               "DIGITLAB_ALLOWED_HOSTS")
            elif key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return error_response(400, "invalid Content-Length header")
                if declared > self.max_bytes:
                    return error_response(413, self._too_large)
        return None

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, self._too_large)
            return msg

        return limited_receive
