"""``GET /v1/models``: the classifiers this server offers."""

from __future__ import annotations

from fastapi import APIRouter

from digitlab.models.io import ModelEntry
from digitlab.serve.errors import error_responses
from digitlab.serve.registry import declared_class
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import ModelInfo, ModelsResponse
from digitlab.serve.state import AppStateDep

__all__ = ["model_info", "router"]

router = APIRouter(tags=["models"])


def model_info(entry: ModelEntry, default: str) -> ModelInfo:
    """What ``GET /v1/models`` says of one saved model: its card and its class's declared capabilities."""
    model_type = entry.card.model if entry.card is not None else None
    cls = declared_class(model_type)
    return ModelInfo(name=entry.name, family=cls.family if cls else None, model_type=model_type,
                     explanation=cls.explanation if cls else None,
                     test_accuracy=entry.card.test_accuracy if entry.card is not None else None,
                     default=entry.name == default)


@router.get("/v1/models", response_model=ModelsResponse, response_class=ModelResponse,
            responses=error_responses(500))
async def list_served_models(state: AppStateDep) -> ModelResponse:
    """The models this server can use: name, family, explanation method and test accuracy (from each card)."""
    default = state.settings.default_model
    entries = await state.blocking(state.registry.entries)
    served = await state.blocking(state.learning.served, state)  # the models compared side by side (issue 15)
    return ModelResponse(ModelsResponse(default=default, models=[model_info(e, default) for e in entries],
                                        served=served))
