"""``GET /v1/models``: the classifiers this server offers."""

from __future__ import annotations

from fastapi import APIRouter

from digitlab.models.io import ModelEntry
from digitlab.novelty import detector_info
from digitlab.serve.errors import error_responses
from digitlab.serve.registry import declared_class
from digitlab.serve.responses import ModelResponse
from digitlab.serve.schemas import ModelInfo, ModelsResponse, NotADigitInfo
from digitlab.serve.state import AppState, AppStateDep

__all__ = ["model_info", "router"]

router = APIRouter(tags=["models"])


def model_info(entry: ModelEntry, default: str) -> ModelInfo:
    """What ``GET /v1/models`` says of one saved model: its card and its class's declared capabilities."""
    model_type = entry.card.model if entry.card is not None else None
    cls = declared_class(model_type)
    novelty = detector_info(entry.path, entry.name)
    return ModelInfo(name=entry.name, family=cls.family if cls else None, model_type=model_type,
                     explanation=cls.explanation if cls else None,
                     test_accuracy=entry.card.test_accuracy if entry.card is not None else None,
                     default=entry.name == default,
                     not_a_digit=NotADigitInfo(can_tell=novelty.can_tell, false_alarm_rate=novelty.false_alarm_rate,
                                               note=novelty.reason))


@router.get("/v1/models", response_model=ModelsResponse, response_class=ModelResponse,
            responses=error_responses(500))
async def list_served_models(state: AppStateDep) -> ModelResponse:
    """The models this server can use: name, family, explanation method, test accuracy (from each card), and whether
    each can tell a digit from something else (its not-a-digit detector's measured false-alarm rate)."""
    default = state.settings.default_model
    infos = await state.blocking(_infos, state, default)
    served = await state.blocking(state.learning.served, state)  # the models compared side by side (issue 15)
    return ModelResponse(ModelsResponse(default=default, models=infos, served=served))


def _infos(state: AppState, default: str) -> list[ModelInfo]:
    return [model_info(e, default) for e in state.registry.entries()]
