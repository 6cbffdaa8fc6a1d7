"""``POST /v1/read``: read a whole number drawn as strokes on a canvas of any aspect ratio, or given as a picture."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from PIL import Image
from starlette.exceptions import HTTPException

from digitlab.limits import Limits
from digitlab.preprocess import Drawing, load_pixels
from digitlab.read import Reading, read_number
from digitlab.serve.errors import error_responses
from digitlab.serve.inputs import open_picture
from digitlab.serve.registry import ServedModel
from digitlab.serve.responses import ModelResponse
from digitlab.serve.routes.predict import _in_time
from digitlab.serve.schemas import ReadDigitInfo, ReadRequest, ReadResponse, validation_context
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["read"])
_INLINE_PARSE_BYTES = 32 * 1024  # smaller bodies are parsed on the event loop (as /v1/predict does)
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": ReadRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


def _read(source: Drawing | str, served: ServedModel, limits: Limits) -> Reading:
    """Blocking: decode the picture (if any), find and classify the digits."""
    picture: Drawing | Image.Image = (source if isinstance(source, Drawing)
                                      else load_pixels(open_picture(source, limits)))
    return read_number(picture, served.recognise, limits=limits)


def _parse(body: bytes, limits: Limits) -> ReadRequest:
    return ReadRequest.model_validate_json(body, context=validation_context(limits))


@router.post("/v1/read", response_model=ReadResponse, response_class=ModelResponse,
             responses=error_responses(400, 404, 413, 415, 422, 500, 503), openapi_extra=_BODY)
async def read(request: Request, state: AppStateDep) -> ModelResponse:
    """Find the digits of a drawing or picture and read them left to right, each with its probabilities, its box
    and whether it looks like a digit at all."""
    t0 = time.perf_counter()
    raw = await request.body()
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", ""):
        raise HTTPException(415, f"send JSON (application/json), not {ctype!r}")
    if not raw.strip():
        raise HTTPException(400, "the request body is empty; send a JSON object with 'image' or 'strokes'")
    limits = state.settings.limits
    req = _parse(raw, limits) if len(raw) < _INLINE_PARSE_BYTES else await state.on_cpu(_parse, raw, limits)
    served = await state.model(req.model)
    source: Drawing | str = req.drawing if req.drawing is not None else req.image or ""
    reading = await _in_time(state.on_cpu(_read, source, served, limits), state)
    return ModelResponse(ReadResponse(
        no_ink=reading.no_ink, text=reading.text,
        digits=[ReadDigitInfo(digit=d.digit, probabilities=d.probabilities, box=d.box, not_a_digit=d.not_a_digit)
                for d in reading.digits],
        model=served.name, elapsed_ms=round((time.perf_counter() - t0) * 1000, 3)))
