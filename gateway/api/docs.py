"""The site root and the API documentation: ``/`` sends a browser to the console; ``/docs``
(Swagger UI) and ``/redoc`` load their scripts and styles from the gateway itself, from the
files the ``fastapi-offline`` package ships, never from a CDN (a LAN without internet access
must still show them). A Content-Security-Policy keeps each page to the gateway's own origin:
the browser makes no request to another host, not even for ReDoc's attribution logo."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from gateway import resources

DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
ASSETS = "/docs/assets"
# the files it ships: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
assets = StaticFiles(directory=resources.directory("fastapi_offline", "static"))

router = APIRouter(include_in_schema=False)

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _own_origin_only(page: HTMLResponse) -> HTMLResponse:
    """The page with a policy that allows only its own inline scripts (by hash: they carry the
    OpenAPI URL, so they are hashed per answer) and the gateway's files. Styles may be inline:
    Swagger UI and ReDoc set them from script."""
    scripts = " ".join(
        [
            "'self'",
            *(
                f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
                for script in _INLINE_SCRIPT.findall(bytes(page.body))
            ),
        ]
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


@router.get("/", response_class=RedirectResponse)
async def site_root() -> RedirectResponse:
    return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)


def _openapi_url(request: Request) -> tuple[str, str]:
    """The prefix a reverse proxy mounts the gateway under, and the OpenAPI document's URL."""
    prefix = str(request.scope.get("root_path", ""))
    return prefix, prefix + (request.app.openapi_url or "/openapi.json")


@router.get(DOCS, response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    prefix, openapi_url = _openapi_url(request)
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{prefix}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{prefix}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{prefix}{ASSETS}/favicon.png",
        oauth2_redirect_url=f"{prefix}{OAUTH2_REDIRECT}",
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    return _own_origin_only(page)


@router.get(OAUTH2_REDIRECT, response_class=HTMLResponse)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return _own_origin_only(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC, response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    prefix, openapi_url = _openapi_url(request)
    page = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{prefix}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{prefix}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    return _own_origin_only(page)


def install(app: FastAPI) -> None:
    """Add the root redirect and the documentation pages to ``app``, which must have been made
    with ``docs_url=None, redoc_url=None`` (FastAPI's own pages load from a CDN)."""
    app.include_router(router)
    app.mount(ASSETS, assets, name="docs-assets")
