"""ASGI middleware of the server: :class:`BodyLimitMiddleware`."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.serve.responses import error_response

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Answer 413 to request bodies larger than ``max_bytes``, declared or streamed, without reading them whole.

    A declared ``Content-Length`` over the limit is answered at once. A streamed body is counted as it
    arrives; the read that crosses the limit raises ``HTTPException(413)``, which FastAPI passes through
    body parsing to the error table (:mod:`digitlab.serve.errors`).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        message = f"request body is larger than the limit of {limit} bytes (setting max_body_bytes)"
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await error_response(400, "invalid Content-Length header")(scope, receive, send)
                    return
                if declared > limit:
                    await error_response(413, message)(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, limited_receive, send)
