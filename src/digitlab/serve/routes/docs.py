"""``GET /docs``: the API's Swagger UI, its JavaScript and CSS served from the package (works offline).

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, so it is blank
without internet; this one loads the copy of ``swagger-ui-dist`` in
``static/swagger/`` (see ``VERSION.txt`` there), as FastAPI documents for
self-hosting the docs' JavaScript and CSS.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

__all__ = ["DOCS_URL", "router"]

DOCS_URL = "/docs"
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"
_ASSETS = "/static/swagger"
router = APIRouter()


@router.get(DOCS_URL, include_in_schema=False)
async def swagger_ui() -> HTMLResponse:
    """The interactive API documentation."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="digitlab MLPaint API - Swagger UI",
                               swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{_ASSETS}/swagger-ui.css",
                               swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png",
                               oauth2_redirect_url=_OAUTH2_REDIRECT)


@router.get(_OAUTH2_REDIRECT, include_in_schema=False)
async def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page (unused by this API, which has no authentication; kept for the UI)."""
    return get_swagger_ui_oauth2_redirect_html()
