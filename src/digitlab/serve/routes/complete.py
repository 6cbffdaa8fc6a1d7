"""``POST /v1/complete``: fill in the hidden part of a digit with a Dirichlet-process mixture."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from digitlab.serve.errors import error_responses
from digitlab.serve.inputs import read_json
from digitlab.serve.middleware import MODEL_KEY
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import CompleteRequest, CompleteResponse
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["complete"])
_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": CompleteRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


@router.post("/v1/complete", response_model=CompleteResponse, response_class=ModelResponse,
             responses=error_responses(400, 404, 413, 415, 422, 500, 503), openapi_extra=_BODY)
async def complete_digit(request: Request, state: AppStateDep) -> ModelResponse:
    """Posterior-predictive probability of every hidden pixel given the visible ones."""
    from digitlab.models.dpmm import complete, half_mask

    t0 = time.perf_counter()
    req = await read_json(request, state, CompleteRequest)
    mixture = await state.blocking(state.mixtures.get, req.model)
    request.scope[MODEL_KEY] = mixture.name
    visible = half_mask(req.keep) if req.keep is not None else req.mask
    assert visible is not None  # CompleteRequest holds exactly one of keep and mask
    probs = await state.blocking(complete, mixture.estimator, req.pixels, visible)
    return ModelResponse(CompleteResponse(probabilities=probs, visible=visible, model=mixture.name,
                                          elapsed_ms=round((time.perf_counter() - t0) * 1000, 3)))
