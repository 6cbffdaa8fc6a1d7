"""The API's routes: one ``APIRouter`` module per resource.

A new resource is a module here with a ``router`` and one line in :data:`ROUTERS`.
"""

from __future__ import annotations

from fastapi import APIRouter

from digitlab.serve.routes import complete, health, models, onnx, page, predict, samples

__all__ = ["ROUTERS"]

#: Every router ``create_app`` includes, in order.
ROUTERS: tuple[APIRouter, ...] = (
    predict.router,
    models.router,
    onnx.router,
    samples.router,
    complete.router,
    health.router,
    page.router,
)
