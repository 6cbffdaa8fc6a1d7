"""Operations: ``GET /healthz`` (liveness), ``GET /readyz`` (readiness) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from digitlab.serve.errors import public_detail
from digitlab.serve.metrics import CONTENT_TYPE
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import HealthResponse, ReadyResponse
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, response_class=ModelResponse)
async def healthz(state: AppStateDep) -> ModelResponse:
    """Liveness: answers while the server runs."""
    return ModelResponse(HealthResponse(status="ok", default_model=state.settings.default_model,
                                        loaded_models=state.registry.loaded()))


@router.get("/readyz", response_model=ReadyResponse, response_class=ModelResponse,
            responses={503: {"model": ReadyResponse, "description": "Not ready yet: the models are loading, or the "
                                                                     "default model cannot be used"}})
async def readyz(state: AppStateDep) -> ModelResponse:
    """Readiness: 200 once the models are loaded and checked, 503 before (or while the default model is unusable)."""
    r = state.readiness
    detail = public_detail(r.detail, {str(state.settings.models_dir): "models_dir"})
    return ModelResponse(ReadyResponse(ready=r.ready, detail=detail, loaded_models=state.registry.loaded()),
                         status_code=200 if r.ready else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
                             "description": "The metrics in Prometheus's text format"}})
async def metrics(state: AppStateDep) -> Response:
    """Request counts, latency histograms, errors by status and model inference time, for Prometheus."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
