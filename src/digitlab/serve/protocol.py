"""uvicorn's HTTP protocol with deadlines on silent, slow and half-sent connections: :class:`GuardedHttpProtocol`.

uvicorn closes a keep-alive connection that stays silent between requests
(``timeout_keep_alive``), but a connection that never sends a request, one
that sends its headers a byte at a time, or one that stops in the middle of
its body stays open for ever, each holding a socket. This protocol adds:

* **idle**: a new connection must start a request within ``idle_timeout``
  seconds (as uvicorn does between requests);
* **headers**: a request's headers must be complete ``header_timeout`` seconds
  after its first byte;
* **body**: its body must be complete ``body_timeout`` seconds after its
  headers.

A connection over a deadline is closed, with one line in the log. It is a
subclass of uvicorn's httptools protocol (uvicorn's ``http=`` accepts a
protocol class); the deadlines travel on uvicorn's ``Config``
(:func:`set_deadlines`), which worker processes receive whole.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GuardedHttpProtocol", "set_deadlines"]

log = logging.getLogger("digitlab.serve")
_HEADER, _BODY = "digitlab_header_timeout", "digitlab_body_timeout"


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with idle, header and body deadlines (see the module's docstring)."""

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout: float = getattr(config, _HEADER, 10.0)
        self.body_timeout: float = getattr(config, _BODY, 30.0)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, what: str, seconds: float) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.info("closed the connection of %s: %s within %g s", client, what, seconds)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a first answer: arm it now too, for a silent new connection
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout, "its request headers were not received")

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout, "its request body was not received")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def set_deadlines(config: Config, header_timeout: float, body_timeout: float) -> Config:
    """Give ``config``'s connections these header and body deadlines (seconds); returns ``config``."""
    setattr(config, _HEADER, header_timeout)
    setattr(config, _BODY, body_timeout)
    return config
