"""``GET /v1/profiles/{name}`` (corrections per digit) and ``DELETE /v1/profiles/{name}`` (forget them all)."""

from __future__ import annotations

from fastapi import APIRouter

from digitlab.profiles import check_profile_name
from digitlab.serve.errors import error_responses
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import ProfileDeleted, ProfileResponse
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["profiles"])


@router.get("/v1/profiles/{name}", response_model=ProfileResponse, response_class=ModelResponse,
            responses=error_responses(404, 422, 500, 503))
async def get_profile(name: str, state: AppStateDep) -> ModelResponse:
    """How many corrections a profile holds, per digit 0-9 (404 for a profile without any)."""
    counts = await state.blocking(state.learning.corrections.counts, check_profile_name(name))
    return ModelResponse(ProfileResponse(profile=name, count=sum(counts), counts=counts))


@router.delete("/v1/profiles/{name}", response_model=ProfileDeleted, response_class=ModelResponse,
               responses=error_responses(404, 422, 500, 503))
async def delete_profile(name: str, state: AppStateDep) -> ModelResponse:
    """Forget a profile: delete its corrections from the store; its predictions are the model's own again."""
    deleted = await state.blocking(state.learning.corrections.forget, check_profile_name(name))
    return ModelResponse(ProfileDeleted(profile=name, deleted=deleted))
