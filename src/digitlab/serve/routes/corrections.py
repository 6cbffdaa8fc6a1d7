"""``POST /v1/corrections``: store a drawing with its true label, for its profile and the next models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from digitlab.errors import NoInkError
from digitlab.limits import Limits
from digitlab.serve import learn
from digitlab.serve.errors import error_responses
from digitlab.serve.inputs import drawing_to_input
from digitlab.serve.responses import ModelResponse
from digitlab.serve.routes.predict import _in_time, image_input
from digitlab.serve.schemas import CorrectionRequest, CorrectionResponse, validation_context
from digitlab.serve.state import AppState, AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["corrections"])

_INLINE_PARSE_BYTES = 32 * 1024  # as /v1/predict: smaller bodies are parsed on the event loop
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": CorrectionRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


async def read_correction(request: Request, state: AppState) -> CorrectionRequest:
    """The validated JSON body.

    Raises
    ------
    HTTPException
        400 for an empty body, 415 for another content type than JSON.
    ValidationError
        The JSON does not match :class:`CorrectionRequest` (the error table answers 400, 413 or 422).
    """
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", ""):
        raise HTTPException(415, f"send the correction as JSON (application/json), not {ctype!r}")
    body = await request.body()
    if not body.strip():
        raise HTTPException(400, "the request body is empty; send a JSON object with 'pixels', 'image' or "
                                 "'strokes' and the 'label'")
    context = validation_context(state.settings.limits)
    if len(body) < _INLINE_PARSE_BYTES:
        return CorrectionRequest.model_validate_json(body, context=context)
    return await state.on_cpu(_parse, body, context)


def _parse(body: bytes, context: dict[str, Limits]) -> CorrectionRequest:
    return CorrectionRequest.model_validate_json(body, context=context)


@router.post("/v1/corrections", status_code=201, response_model=CorrectionResponse, response_class=ModelResponse,
             responses=error_responses(400, 404, 413, 415, 422, 500, 503), openapi_extra=_BODY)
async def correct(request: Request, state: AppStateDep) -> ModelResponse:
    """Store a drawing (pixels, image or strokes, as for /v1/predict) with its true label, durably.

    With a ``profile``, predictions under that profile adapt to it from the next request on. The answer
    (201) comes once the correction is safe on disk: a crash of the server after it loses nothing.
    """
    req = await read_correction(request, state)
    served = await state.model(req.model)
    if req.pixels is not None:
        x = req.pixels if req.pixels.any() else None
    elif req.drawing is not None:
        x = await state.on_cpu(drawing_to_input, req.drawing)
    else:
        x = await image_input(req.image or "", state)
    if x is None:
        raise NoInkError("nothing is drawn: a correction needs a drawing with ink")
    pred = await _in_time(served.submit(x), state)
    if req.profile is not None:
        pred, _ = await learn.personalise(state, served, x, pred, req.profile)
    strokes = None
    if req.strokes is not None:
        strokes = {"strokes": req.strokes, "width": req.width, "height": req.height, "pen_width": req.pen_width}
    stored = await state.blocking(lambda: state.learning.corrections.add(
        pixels=x, label=req.label, profile=req.profile, predicted=pred.digit, model=served.name, strokes=strokes))
    return ModelResponse(CorrectionResponse(
        id=stored.id, profile=stored.profile, count=stored.count, label=req.label, predicted=pred.digit,
        model=served.name, stored="store" if stored.applied else "staged"), status_code=201)
