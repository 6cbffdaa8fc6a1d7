"""``GET /healthz``: liveness."""

from __future__ import annotations

from fastapi import APIRouter

from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import HealthResponse
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, response_class=ModelResponse)
async def healthz(state: AppStateDep) -> ModelResponse:
    """Liveness: answers while the server runs."""
    return ModelResponse(HealthResponse(status="ok", default_model=state.settings.default_model,
                                        loaded_models=state.registry.loaded()))
