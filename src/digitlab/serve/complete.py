"""``POST /v1/complete``: fill in the hidden part of a digit with a Dirichlet-process mixture.

The mixture models (``digitlab dpmm fit`` / ``digitlab train dpmm``) are not
ten-digit classifiers, so they are loaded here, once each, rather than by the
prediction registry.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool

from digitlab.errors import ModelError, NotFoundError, UserError
from digitlab.models.io import LoadedModel, list_models, load_model, model_path
from digitlab.serve.schemas import CompleteRequest, CompleteResponse, ErrorResponse

__all__ = ["add_complete_route"]


class MixtureModels:
    """Dirichlet-process mixture models by name, each loaded once (thread-safe)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def default_name(self) -> str:
        names = [m["name"] for m in list_models(self.models_dir) if m.get("model") == "dpmm"]
        if not names:
            raise NotFoundError("no Dirichlet-process mixture model on this server; train one with "
                                "'digitlab dpmm fit' (or 'digitlab train dpmm')")
        return names[0]

    def get(self, name: str | None) -> LoadedModel:
        """Load (once) and return the mixture ``name`` (default: the first by name). Blocking."""
        name = name or self.default_name()
        with self._lock:
            if name not in self._loaded:
                loaded = load_model(model_path(name, self.models_dir), name=name)
                if loaded.card.get("model") != "dpmm":
                    raise UserError(f"model {name!r} is a {loaded.card.get('model')!r} model; completion needs a "
                                    "Dirichlet-process mixture ('dpmm')")
                self._loaded[name] = loaded
            return self._loaded[name]


def add_complete_route(app: FastAPI, models_dir: Path) -> None:
    """Register ``POST /v1/complete`` on ``app``, serving mixtures saved in ``models_dir``."""
    from digitlab.models.dpmm import complete, half_mask

    mixtures = MixtureModels(models_dir)
    errors = {code: {"model": ErrorResponse, "description": text} for code, text in [
        (404, "No such mixture model"), (413, "Body too large"), (422, "Invalid input")]}

    @app.post("/v1/complete", response_model=CompleteResponse, responses=errors)  # type: ignore[misc]
    async def complete_digit(req: CompleteRequest) -> CompleteResponse:
        """Posterior-predictive probability of every hidden pixel given the visible ones."""
        t0 = time.perf_counter()
        try:
            loaded = await run_in_threadpool(mixtures.get, req.model)
            visible = half_mask(req.keep) if req.keep is not None else req.mask
            probs = await run_in_threadpool(complete, loaded.estimator, req.pixels, visible)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ModelError as exc:
            raise HTTPException(500, f"model cannot be used: {exc}") from None
        except UserError as exc:
            raise HTTPException(422, str(exc)) from None
        return CompleteResponse(probabilities=probs.tolist(), visible=visible.tolist(), model=loaded.name,
                                elapsed_ms=round((time.perf_counter() - t0) * 1000, 3))
