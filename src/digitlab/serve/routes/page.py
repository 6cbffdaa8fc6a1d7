"""The MLPaint page: ``/`` and its ``/static`` files (plain HTML/CSS/JS shipped in the package)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "router"]

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter()


@cache
def _index_html() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def index() -> HTMLResponse:
    """The drawing page."""
    return HTMLResponse(_index_html())


router.mount("/static", StaticFiles(directory=STATIC), name="static")
