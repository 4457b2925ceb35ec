"""The web console under ``/console``: server-rendered pages behind a session cookie.

A platform key signs in once (``POST /console/login``) and gets an HttpOnly, SameSite=Strict
session cookie (Secure over https); every page and console endpoint needs it, only the login
page and its static files do not. The Security page listens to ``/api/v1/events/stream`` with
the same cookie. The one state-changing call, acknowledging an alert, is a POST that must carry
the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from gateway import resources
from gateway.api.deps import AlertingDep, GatewayDep
from gateway.auth import Principal
from gateway.console import session, views
from gateway.rules.service import AlertCleared, AlertNotFound
from gateway.store.queries import QueryError, parse_time

templates = Jinja2Templates(directory=resources.console_dir("templates"))
static = StaticFiles(directory=resources.console_dir("static"))

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

PAGES = {
    "security": "Security",
    "parking": "Parking",
    "energy": "Energy",
    "lockers": "Lockers",
    "devices": "Devices and tickets",
}


async def _page_user(request: Request, gateway: GatewayDep) -> Principal:
    principal = session.current(gateway, request)
    if principal is None:
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": "/console/login"})
    return principal


async def _api_user(request: Request, gateway: GatewayDep) -> Principal:
    principal = session.current(gateway, request)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in to the console first")
    return principal


PageUser = Annotated[Principal, Depends(_page_user)]
ApiUser = Annotated[Principal, Depends(_api_user)]


def _throttle(request: Request) -> session.LoginThrottle:
    """The app's sign-in throttle, made with the first sign-in."""
    state = request.app.state
    if getattr(state, "console_throttle", None) is None:
        state.console_throttle = session.LoginThrottle()
    throttle: session.LoginThrottle = state.console_throttle
    return throttle


def _render(request: Request, page: str, principal: Principal, **data: Any) -> HTMLResponse:
    context = {
        "page": page,
        "title": PAGES.get(page, "Sign in"),
        "pages": PAGES,
        "user": principal.name,
        "csrf": session.csrf_token(request),
        **data,
    }
    response = templates.TemplateResponse(request, f"{page}.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("", response_class=RedirectResponse)
async def index() -> RedirectResponse:
    return RedirectResponse("/console/security", status.HTTP_303_SEE_OTHER)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, error: str = "") -> HTMLResponse:
    return templates.TemplateResponse(
        request, "login.html", {"title": "Sign in", "error": error, "pages": {}}
    )


@router.post("/login")
async def login(request: Request, gateway: GatewayDep) -> Response:
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key, name, password = ((form.get(f) or [""])[0] for f in ("key", "operator", "password"))
    throttle = _throttle(request)
    # platform keys (16+ random characters) are not worth guessing; an operator password is,
    # so failures count per name and client address (not per name alone: a stranger could
    # then lock the guard out)
    client = request.client.host if request.client else ""
    who = "" if key else f"{name}@{client}"
    if who and throttle.blocked(who):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed sign-ins: wait a minute",
            headers={"Retry-After": str(int(throttle.window_s))},
        )
    if key:
        token = session.login(gateway, key)
    else:
        token = await run_in_threadpool(session.login_operator, gateway, name, password)
    if token is None:
        if who:
            throttle.failed(who)
        return RedirectResponse("/console/login?error=1", status.HTTP_303_SEE_OTHER)
    if who:
        throttle.succeeded(who)
    response = RedirectResponse("/console/security", status.HTTP_303_SEE_OTHER)
    session.set_cookie(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, principal: ApiUser) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    session.check_csrf(request, (form.get("csrf") or [""])[0])
    response = RedirectResponse("/console/login", status.HTTP_303_SEE_OTHER)
    session.clear_cookie(response, request)
    return response


@router.get("/security", response_class=HTMLResponse)
async def security(request: Request, gateway: GatewayDep, principal: PageUser) -> HTMLResponse:
    data = await run_in_threadpool(views.security, gateway, principal)
    return _render(request, "security", principal, **data)


@router.get("/parking", response_class=HTMLResponse)
async def parking(request: Request, gateway: GatewayDep, principal: PageUser) -> HTMLResponse:
    data = await run_in_threadpool(views.parking, gateway, principal)
    return _render(request, "parking", principal, **data)


@router.get("/energy", response_class=HTMLResponse)
async def energy(request: Request, gateway: GatewayDep, principal: PageUser) -> HTMLResponse:
    data = await run_in_threadpool(views.energy, gateway, principal)
    return _render(request, "energy", principal, **data)


@router.get("/lockers", response_class=HTMLResponse)
async def lockers(request: Request, gateway: GatewayDep, principal: PageUser) -> HTMLResponse:
    data = await run_in_threadpool(views.lockers, gateway, principal)
    return _render(request, "lockers", principal, **data)


@router.get("/devices", response_class=HTMLResponse)
async def devices(request: Request, gateway: GatewayDep, principal: PageUser) -> HTMLResponse:
    data = await run_in_threadpool(views.devices_page, gateway, principal)
    return _render(request, "devices", principal, **data)


@router.post("/alerts/{alert_id}/ack")
async def ack(
    alert_id: int,
    request: Request,
    alerting: AlertingDep,
    principal: ApiUser,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token")] = None,
) -> dict[str, Any]:
    session.check_csrf(request, csrf)
    try:
        return alerting.acknowledge(alert_id, f"console:{principal.name}", principal.may_see)
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except AlertCleared as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/energy.csv")
async def energy_csv(
    gateway: GatewayDep, principal: ApiUser, since: str, until: str
) -> StreamingResponse:
    """Meter counter readings of a period (dates are whole UTC days; ``until`` included)."""
    try:
        since_ms = parse_time(_day(since), "since")
        until_ms = parse_time(_day(until, end=True), "until")
    except QueryError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    name = f"energy-{since[:10]}-{until[:10]}.csv"
    return StreamingResponse(
        views.energy_csv(gateway, principal, since_ms, until_ms),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _day(text: str, end: bool = False) -> str:
    """``2026-11-21`` -> the day's first (or last) millisecond, UTC; other forms unchanged."""
    t = text.strip()
    if len(t) == 10 and t[4] == "-" and t[7] == "-":
        return f"{t}T23:59:59.999+00:00" if end else f"{t}T00:00:00+00:00"
    return t
