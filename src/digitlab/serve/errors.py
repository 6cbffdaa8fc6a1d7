"""The one table that turns errors into HTTP answers, installed by :func:`install_error_table`.

Routes and the library raise; only this module decides the status:

======================================  ======  =========================================
:class:`~digitlab.errors.TooLargeError`   413   an input over a :class:`~digitlab.limits.Limits` bound
``NotFoundError``, ``DataNotFoundError``  404   an unknown model or profile, MNIST absent, no mixture
``MissingExtraError``                     501   needs an extra this installation lacks (torch)
:class:`~digitlab.errors.StoreBusyError`  503   another process held the store too long
``NoInkError``, other ``UserError``       422   the request is wrong
``ModelError``, other ``DigitlabError``   500   a model file or digitlab is broken
any other exception                       500   a bug: one line in the log, no traceback in the answer
request validation                        400 (malformed JSON), 413 (``too_large``) or 422
``HTTPException``                         its own status
======================================  ======  =========================================

Every answer is JSON ``{"detail": "..."}``. Details never hold an absolute
path: the server's folders are named by their setting (``<models_dir>``,
``<data_dir>``) and any other path by its last part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from digitlab.errors import (
    DataNotFoundError,
    DigitlabError,
    MissingExtraError,
    ModelError,
    NoInkError,
    NotFoundError,
    StoreBusyError,
    TooLargeError,
    UserError,
)
from digitlab.models.io import bundled_dir
from digitlab.serve.responses import error_response
from digitlab.serve.schemas import ErrorResponse
from digitlab.serve.state import state_of

__all__ = ["STATUS", "error_responses", "install_error_table", "public_detail", "status_of", "validation_answer"]

log = logging.getLogger("digitlab.serve")

#: Library error -> HTTP status. A subclass not listed takes the status of its nearest listed base.
STATUS: Mapping[type[DigitlabError], int] = {
    TooLargeError: 413,
    MissingExtraError: 501,  # this installation lacks an extra (torch): not the request's fault, not a bug
    NotFoundError: 404,
    DataNotFoundError: 404,
    StoreBusyError: 503,
    NoInkError: 422,
    UserError: 422,
    ModelError: 500,
    DigitlabError: 500,
}

_DESCRIPTIONS = {
    400: "Malformed JSON or body",
    404: "Unknown model, or no such item",
    413: "Body or input too large",
    415: "Unsupported content type",
    422: "Invalid input",
    500: "Unusable model or internal error",
    501: "Needs an optional dependency this installation lacks",
    503: "Timed out, or the store is busy",
}
_ABS_PATH = re.compile(r"(?<![\w.~<>/-])/(?:[\w.+@~-]+/)+([\w.+@~-]*)")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route that can answer the error ``codes``."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


def status_of(exc: DigitlabError) -> int:
    """The HTTP status of a library error (by :data:`STATUS`)."""
    by_class: dict[type, int] = dict(STATUS)
    return next((by_class[cls] for cls in type(exc).__mro__ if cls in by_class), 500)


def public_detail(text: str, folders: Mapping[str, str] | None = None) -> str:
    """``text`` without absolute paths: ``folders`` (path -> setting name) by name, others by their last part."""
    for path, name in sorted((folders or {}).items(), key=lambda kv: -len(kv[0])):
        if path and path != "/":
            text = text.replace(path, f"<{name}>")
    return _ABS_PATH.sub(lambda m: m.group(1) or "/", text)


def validation_answer(errors: Sequence[Mapping[str, Any]]) -> tuple[int, str]:
    """Status and one clear message for pydantic's or FastAPI's validation ``errors``."""
    if errors and errors[0].get("type") == "json_invalid":
        first = errors[0]
        reason = str(first.get("msg", "")).removeprefix("Invalid JSON: ")
        ctx = first.get("ctx")
        if isinstance(ctx, Mapping) and ctx.get("error"):
            reason = f"{reason} ({ctx['error']})"
        return 400, f"malformed JSON: {reason}"
    too_large = [e for e in errors if e.get("type") == "too_large"]
    return (413, _message(too_large)) if too_large else (422, _message(errors))


def _message(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _folders(request: Request) -> dict[str, str]:
    settings = state_of(request.app).settings
    return {str(settings.models_dir): "models_dir", str(settings.data_dir): "data_dir",
            str(bundled_dir()): "bundled model"}


def _answer(request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return error_response(status, public_detail(detail, _folders(request)), dict(headers) if headers else None)


async def _library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DigitlabError)
    status = status_of(exc)
    if status < 500:
        return _answer(request, status, str(exc))
    log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return _answer(request, status, str(exc) if isinstance(exc, ModelError) else f"internal error: {exc}")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _answer(request, exc.status_code, str(exc.detail), exc.headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, (RequestValidationError, ValidationError))
    status, detail = validation_answer(exc.errors())
    return _answer(request, status, detail)


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__,
              str(exc).splitlines()[0] if str(exc) else "")
    log.debug("traceback of the internal error", exc_info=exc)
    return _answer(request, 500, f"internal error: {type(exc).__name__}")


def install_error_table(app: FastAPI) -> None:
    """Install the table on ``app`` (``add_exception_handler``), replacing FastAPI's own answers."""
    for cls in STATUS:
        app.add_exception_handler(cls, _library_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(Exception, _internal)
