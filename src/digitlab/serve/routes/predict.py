"""``POST /v1/predict``: classify a digit given as pixels, an image or strokes, optionally explained."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from digitlab.serve import learn
from digitlab.serve.errors import error_responses
from digitlab.serve.inputs import drawing_to_input, open_picture, picture_to_input, read_predict_request
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import PredictRequest, PredictResponse
from digitlab.serve.state import AppState, AppStateDep

__all__ = ["router"]

T = TypeVar("T")
router = APIRouter(tags=["predict"])

# Pictures this small (a drawing canvas) are decoded and normalised on the event loop; see image_input.
_INLINE_IMAGE_BYTES = 64 * 1024
_INLINE_IMAGE_PIXELS = 512 * 512
_NOTHING_SEEN = np.zeros(784, dtype=np.float32)
_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")},
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary"}, "model": {"type": "string"},
        "explain": {"type": "string", "description": "true, false or a digit 0-9"}}}}}}}


async def image_input(data: bytes | str, state: AppState) -> np.ndarray | None:
    """Decode and normalise an image: small ones on the event loop, others in a worker thread.

    Handing a canvas-sized picture to a thread costs more in waiting for the GIL than decoding it
    (docs/serve.md). A picture is small when its bytes (or base64 text) are short and its header
    declares few pixels (a tiny PNG can declare a huge picture); larger ones never block the event loop.
    The header is read once, here or in the thread.
    """
    limits = state.settings.limits
    if len(data) > _INLINE_IMAGE_BYTES:
        return await state.on_cpu(_open_and_normalise, data, state)
    img = open_picture(data, limits)
    if img.width * img.height <= _INLINE_IMAGE_PIXELS:
        return picture_to_input(img, limits)
    return await state.on_cpu(picture_to_input, img, limits)


def _open_and_normalise(data: bytes | str, state: AppState) -> np.ndarray | None:
    limits = state.settings.limits
    return picture_to_input(open_picture(data, limits), limits)


async def _in_time(aw: Awaitable[T], state: AppState) -> T:
    timeout = state.settings.request_timeout
    try:
        return await asyncio.wait_for(aw, timeout)
    except TimeoutError:
        raise HTTPException(503, f"the prediction took longer than {timeout:g} s (setting request_timeout)") from None


@router.post("/v1/predict", response_model=PredictResponse, response_class=ModelResponse,
             responses=error_responses(400, 404, 413, 415, 422, 500, 503), openapi_extra=_BODY)
async def predict(request: Request, state: AppStateDep) -> ModelResponse:
    """Classify a digit given as pixels, an image (JSON base64/data URL or multipart upload) or strokes."""
    t0 = time.perf_counter()
    req, upload = await read_predict_request(request, state)
    served = await state.model(req.model)
    x: np.ndarray | None
    if req.pixels is not None:
        x = req.pixels if req.pixels.any() else None
    elif req.drawing is not None:
        x = await state.on_cpu(drawing_to_input, req.drawing)
    else:
        x = await image_input(upload if upload is not None else req.image or "", state)
    more: dict[str, Any] = {}  # what "profile" and "models" add (issue 15); nothing is done without them
    if x is None:
        if req.profile is not None or req.models is not None:
            _, more = await learn.extras(state, req, served, None, None)
        return ModelResponse(PredictResponse(
            no_ink=True, digit=None, probabilities=None, scores=None, input=_NOTHING_SEEN, model=served.name,
            elapsed_ms=_ms_since(t0), **more))
    pred = await _in_time(served.submit(x), state)
    if req.profile is not None or req.models is not None:
        adapted, more = await _in_time(learn.extras(state, req, served, x, pred), state)
        pred = adapted or pred
    if req.explain is False:
        return ModelResponse(PredictResponse(
            no_ink=False, digit=pred.digit, not_a_digit=pred.not_a_digit, probabilities=pred.probabilities,
            scores=pred.scores, input=x, model=served.name, elapsed_ms=_ms_since(t0), **more))
    digit = pred.digit if req.explain is True else int(req.explain)
    expl = await _in_time(state.blocking(served.explain, x, digit), state)
    return ModelResponse(PredictResponse(
        no_ink=False, digit=pred.digit, not_a_digit=pred.not_a_digit, probabilities=pred.probabilities,
        scores=pred.scores, input=x, explanation=np.asarray(expl.contributions, dtype=np.float64).reshape(784),
        explained_digit=int(expl.digit), explanation_method=str(expl.method), model=served.name,
        elapsed_ms=_ms_since(t0), **more))


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
