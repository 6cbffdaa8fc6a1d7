"""The API's routes: one ``APIRouter`` module per resource.

A new resource is a module here with a ``router`` and one line in :data:`ROUTERS`.
"""

from __future__ import annotations

from fastapi import APIRouter

from digitlab.serve.routes import (
    complete,
    corrections,
    health,
    models,
    onnx,
    page,
    predict,
    profiles,
    read,
    samples,
)

__all__ = ["ROUTERS"]

#: Every router ``create_app`` includes, in order.
ROUTERS: tuple[APIRouter, ...] = (
    predict.router,
    read.router,
    models.router,
    onnx.router,
    samples.router,
    complete.router,
    corrections.router,  # issue 15
    profiles.router,  # issue 15
    health.router,
    page.router,
)
