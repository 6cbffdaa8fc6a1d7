"""The MLPaint web app and REST API: :func:`create_app` builds the FastAPI application.

Routes are thin: they validate (``schemas``), hand CPU work to worker threads
(``_inputs``, ``models``) and turn library errors into HTTP answers — only
here. Every error is JSON ``{"detail": "..."}`` with a 4xx/5xx status, never
a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.errors import DataNotFoundError, DigitlabError, ModelError, NotFoundError, UserError
from digitlab.preprocess import TooLargeError, load_pixels, open_image
from digitlab.serve._inputs import image_bytes, image_to_input, normalised, strokes_to_input
from digitlab.serve.complete import add_complete_route
from digitlab.serve.models import ModelRegistry, ServedModel
from digitlab.serve.schemas import (
    ErrorResponse,
    HealthResponse,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
    SampleResponse,
)
from digitlab.serve.settings import ServeSettings

__all__ = ["SETTINGS_ENV", "app_from_env", "create_app"]

log = logging.getLogger("digitlab.serve")
#: Environment variable carrying the settings (JSON) to worker processes started by uvicorn.
SETTINGS_ENV = "DIGITLAB_SERVE_SETTINGS"
_INLINE_PARSE_BYTES = 32 * 1024  # smaller JSON bodies (784 pixels are ~4 kB) are parsed on the event loop
# Images this small (a drawing canvas) are decoded and normalised on the event loop; see image_input.
_INLINE_IMAGE_BYTES = 64 * 1024
_INLINE_IMAGE_PIXELS = 512 * 512
STATIC = Path(__file__).resolve().parent / "static"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in [
        (400, "Malformed JSON"), (404, "Unknown model"), (413, "Body or image too large"),
        (415, "Unsupported content type"), (422, "Invalid input"), (503, "Timed out")]}


class JSONResponse(Response):
    """A JSON response serialised with orjson (NumPy arrays allowed)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 to request bodies larger than ``max_bytes`` (declared or streamed), without reading them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        too_large = _error(413, f"request body is larger than the limit of {limit} bytes")
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _error(400, "invalid Content-Length header")(scope, receive, send)
                    return
                if declared > limit:
                    await too_large(scope, receive, send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await too_large(scope, receive, send)


@contextlib.contextmanager
def _http_errors() -> Iterator[None]:
    """Turn library errors into HTTP errors (the only place this happens)."""
    try:
        yield
    except TooLargeError as exc:
        raise HTTPException(413, str(exc)) from None
    except (NotFoundError, DataNotFoundError) as exc:
        raise HTTPException(404, str(exc)) from None
    except UserError as exc:
        raise HTTPException(422, str(exc)) from None
    except DigitlabError as exc:
        raise HTTPException(500, f"internal error: {exc}") from None


def _validation_message(exc: ValidationError | RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _multipart_request(form: Any) -> PredictRequest:
    allowed = {"image", "file", "model", "explain"}
    unknown = sorted(set(form.keys()) - allowed)
    if unknown:
        raise HTTPException(422, f"unknown form field {unknown[0]!r}; expected an 'image' file and optional "
                                 "'model' and 'explain'")
    upload = form.get("image") or form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "multipart upload needs the picture in a file field named 'image'")
    fields: dict[str, Any] = {"image": ""}
    if form.get("model"):
        fields["model"] = str(form["model"])
    explain = str(form.get("explain") or "").strip().lower()
    if explain in ("true", "yes", "on"):
        fields["explain"] = True
    elif explain.isdigit():
        fields["explain"] = int(explain)
    elif explain not in ("", "false", "no", "off"):
        raise HTTPException(422, f"explain: must be true, false or a digit 0-9, got {explain!r}")
    try:
        req = PredictRequest.model_validate(fields)
    except ValidationError as exc:
        raise HTTPException(422, _validation_message(exc)) from None
    return req


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    settings : ServeSettings

    Returns
    -------
    FastAPI
        Serves the page at ``/``, the API under ``/v1``, ``/healthz`` and OpenAPI docs at ``/docs``.
    """
    registry = ModelRegistry(settings.models_dir, max_batch=settings.max_batch,
                             torch_threads=settings.torch_threads, freeze_gc=settings.freeze_gc,
                             explain_threads=settings.explain_threads)
    # CPU-bound input work (decoding, normalising) runs on as many threads as there are cores: more
    # threads only fight over the GIL and stretch everyone's latency.
    cpu_limiter = anyio.CapacityLimiter(settings.preprocess_threads)

    async def on_cpu(fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=cpu_limiter)

    mnist_lock = threading.Lock()
    mnist_cache: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:  # load the default model before the first request; failures are reported per request
            await run_in_threadpool(registry.get, settings.default_model)
        except DigitlabError as exc:
            log.warning("default model %r not loaded: %s", settings.default_model, exc)
        yield

    app = FastAPI(title="digitlab MLPaint API", version="1", lifespan=lifespan,
                  description="Handwritten digit recognition: draw, upload or send pixels; get the digit, "
                              "every class's score and a per-pixel explanation.",
                  default_response_class=JSONResponse)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.registry = registry

    @app.exception_handler(HTTPException)
    async def _http_exc(_: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return _error(422, _validation_message(exc))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        log.exception("internal error")
        return _error(500, f"internal error: {type(exc).__name__}")

    async def model_for(name: str | None) -> ServedModel:
        name = name or settings.default_model
        served = registry.cached(name)
        if served is None:
            try:
                served = await run_in_threadpool(registry.get, name)
            except NotFoundError:
                known = ", ".join(sorted(i["name"] for i in await run_in_threadpool(registry.infos))) or "none"
                raise HTTPException(404, f"unknown model {name!r}; available: {known}") from None
            except ModelError as exc:
                raise HTTPException(500, f"model {name!r} cannot be used: {exc}") from None
            except UserError as exc:
                raise HTTPException(422, str(exc)) from None
        return served

    async def image_input(data: bytes | str) -> np.ndarray | None:
        """Decode and normalise an image: small ones on the event loop, others in a worker thread.

        A canvas-sized picture takes about 1 ms (decoding 0.3 ms, normalising the rest); handing it to a thread
        costs more than that in waiting for the GIL. A picture is small when its base64 text is short and its header declares few pixels (a tiny
        PNG can declare a huge picture); larger ones never block the event loop.
        """
        if len(data) <= _INLINE_IMAGE_BYTES:
            data = image_bytes(data) if isinstance(data, str) else data  # decoded once, here or in the thread
            img = open_image(data, max_side=settings.max_image_side, max_pixels=settings.max_image_pixels)
            if img.width * img.height <= _INLINE_IMAGE_PIXELS:
                return normalised(load_pixels(img))  # the header is read once
        return await on_cpu(image_to_input, data, settings.max_image_side, settings.max_image_pixels)

    async def with_timeout(aw: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(aw, settings.request_timeout)
        except TimeoutError:
            raise HTTPException(503, f"the prediction took longer than {settings.request_timeout:g} s") from None

    async def read_request(request: Request) -> tuple[PredictRequest, bytes | None]:
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            try:
                async with request.form(max_files=1, max_fields=8, max_part_size=settings.max_body_bytes) as form:
                    req = _multipart_request(form)
                    upload = form.get("image") or form.get("file")
                    data = await upload.read()  # type: ignore[union-attr]
            except HTTPException:
                raise
            except _BodyTooLarge:
                raise
            except Exception as exc:
                reason = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
                raise HTTPException(400, f"malformed multipart body: {reason}") from None
            if not data:
                raise HTTPException(422, "the uploaded image is empty")
            return req, data
        if ctype not in ("application/json", "text/plain", ""):
            raise HTTPException(415, f"send JSON (application/json) or a multipart image upload, not {ctype!r}")
        body = await request.body()
        if not body.strip():
            raise HTTPException(400, "the request body is empty; send a JSON object with 'pixels', 'image' or "
                                     "'strokes'")
        try:  # big bodies (images, long strokes) are parsed off the event loop so others are not held up
            req = (PredictRequest.model_validate_json(body) if len(body) < _INLINE_PARSE_BYTES
                   else await on_cpu(PredictRequest.model_validate_json, body))
        except ValidationError as exc:
            errors = exc.errors()
            if errors and errors[0].get("type") == "json_invalid":
                raise HTTPException(400, f"malformed JSON: {errors[0].get('msg', '')}".replace(
                    "Invalid JSON: ", "")) from None
            if errors and errors[0].get("type") == "model_type":
                raise HTTPException(422, "the body must be a JSON object with 'pixels', 'image' or "
                                         "'strokes'") from None
            raise HTTPException(422, _validation_message(exc)) from None
        return req, None

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS, openapi_extra={
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": PredictRequest.model_json_schema(ref_template="#/components/schemas/"
                                                                            "{model}")},
            "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
                "image": {"type": "string", "format": "binary"}, "model": {"type": "string"},
                "explain": {"type": "string", "description": "true, false or a digit 0-9"}}}}}}})
    async def predict(request: Request) -> Response:
        """Classify a digit given as pixels, an image (JSON base64/data URL or multipart upload) or strokes."""
        t0 = time.perf_counter()
        req, upload = await read_request(request)
        served = await model_for(req.model)
        x: np.ndarray | None
        if req.pixels is not None:
            x = req.pixels if req.pixels.any() else None
        elif req.strokes is not None:
            assert req.width is not None and req.height is not None
            points = sum(len(s) for s in req.strokes)
            if points > settings.max_stroke_points:
                raise HTTPException(413, f"the strokes have {points} points; at most "
                                         f"{settings.max_stroke_points} are accepted")
            if max(req.width, req.height) > settings.max_image_side:
                raise HTTPException(413, f"the canvas is {req.width}x{req.height}; the largest accepted side is "
                                         f"{settings.max_image_side} px")
            pen = req.pen_width or max(req.width, req.height) / 14
            with _http_errors():
                x = await on_cpu(strokes_to_input, req.strokes, req.width, req.height, pen)
        else:
            with _http_errors():
                x = await image_input(upload if upload is not None else req.image or "")
        out: dict[str, Any] = {"model": served.name}
        if x is None:
            out.update(no_ink=True, digit=None, probabilities=None, scores=None,
                       input=np.zeros(784, dtype=np.float32))
        else:
            pred = await with_timeout(served.submit(x))
            out.update(no_ink=False, digit=pred.digit, probabilities=pred.probabilities, scores=pred.scores,
                       input=x)
            if req.explain is not False:
                digit = pred.digit if req.explain is True else int(req.explain)
                with _http_errors():
                    expl = await with_timeout(run_in_threadpool(served.explain, x, digit))
                out.update(explanation=np.asarray(expl.contributions, dtype=np.float64).reshape(784),
                           explained_digit=int(expl.digit), explanation_method=str(expl.method))
        out["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return JSONResponse(out)

    @app.get("/v1/models", response_model=ModelsResponse, responses=_ERRORS)
    async def models() -> Response:
        """The models this server can use: name, family and test accuracy (from each model's card)."""
        with _http_errors():
            infos = await run_in_threadpool(registry.infos)
        for info in infos:
            info["default"] = info["name"] == settings.default_model
        return JSONResponse({"default": settings.default_model, "models": infos})

    def test_set() -> tuple[np.ndarray, np.ndarray]:
        with mnist_lock:
            if "test" not in mnist_cache:
                from digitlab.data import load_mnist
                try:
                    mnist_cache["test"] = load_mnist(settings.data_dir, "test")
                except DataNotFoundError as exc:
                    raise DataNotFoundError(f"MNIST is not available on this server ({exc}); run "
                                            "`digitlab data fetch` or set DIGITLAB_DATA") from None
            return mnist_cache["test"]

    @app.get("/v1/samples", response_model=SampleResponse, responses=_ERRORS)
    async def samples(digit: int = Query(..., ge=0, le=9, description="The digit, 0-9."),
                      offset: int = Query(0, ge=0, description="Which image of that digit (0 = first).")
                      ) -> Response:
        """The ``offset``-th MNIST test image of ``digit`` (404 when MNIST is absent)."""
        with _http_errors():
            images, labels = await run_in_threadpool(test_set)
        where = np.flatnonzero(labels == digit)
        if offset >= len(where):
            raise HTTPException(404, f"the MNIST test set has {len(where)} images of digit {digit}; offset must "
                                     f"be below that, got {offset}")
        index = int(where[offset])
        return JSONResponse({"digit": digit, "offset": offset, "count": len(where), "index": index,
                             "pixels": images[index].reshape(784)})

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz() -> Response:
        """Liveness: answers while the server runs."""
        return JSONResponse({"status": "ok", "default_model": settings.default_model,
                             "loaded_models": registry.loaded()})

    index_html = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(index_html)

    add_complete_route(app, settings.models_dir)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app




def app_from_env() -> FastAPI:
    """Application factory for uvicorn worker processes: settings from ``$DIGITLAB_SERVE_SETTINGS`` (JSON)."""
    import json
    import os

    from digitlab.serve.settings import settings_from_json

    return create_app(settings_from_json(json.loads(os.environ[SETTINGS_ENV])))
