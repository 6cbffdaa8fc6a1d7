"""``GET /v1/samples``: MNIST test images, for the page's *Random MNIST test digit* button."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Query

from digitlab.errors import NotFoundError
from digitlab.serve.errors import error_responses
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import SampleResponse
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["samples"])


@router.get("/v1/samples", response_model=SampleResponse, response_class=ModelResponse,
            responses=error_responses(404, 422))
async def sample(state: AppStateDep,
                 digit: int = Query(..., ge=0, le=9, description="The digit, 0-9."),
                 offset: int = Query(0, ge=0, description="Which image of that digit (0 = first).")
                 ) -> ModelResponse:
    """The ``offset``-th MNIST test image of ``digit`` (404 when MNIST is absent)."""
    images, labels = await state.blocking(state.mnist.get)
    where = np.flatnonzero(labels == digit)
    if offset >= len(where):
        raise NotFoundError(f"the MNIST test set has {len(where)} images of digit {digit}; offset must be below "
                            f"that, got {offset}")
    index = int(where[offset])
    return ModelResponse(SampleResponse(digit=digit, offset=offset, count=len(where), index=index,
                                        pixels=images[index].reshape(784)))
