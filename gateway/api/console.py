"""The web console under ``/console``: server-rendered pages behind a session cookie.

A platform key signs in once (``POST /console/login``) and gets an HttpOnly, SameSite=Strict
session cookie (Secure over https); every page and console endpoint needs it, only the login
page and its static files do not. The Security page listens to ``/api/v1/events/stream`` with
the same cookie. The one state-changing call, acknowledging an alert, is a POST that must carry
the session's CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from gateway import resources
from gateway.api.deps import AlertingDep, GatewayDep, require_scope
from gateway.auth import Principal
from gateway.console import session, views
from gateway.console.throttle import Busy, SignInGuard, parse_networks
from gateway.rules.service import AlertCleared, AlertNotFound
from gateway.service import Gateway
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
    return require_scope(principal, request)


async def _api_user(request: Request, gateway: GatewayDep) -> Principal:
    principal = session.current(gateway, request)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in to the console first")
    return require_scope(principal, request)


async def _signed_in(request: Request, gateway: GatewayDep) -> Principal:
    """Any session, whatever its scopes (signing out needs none)."""
    principal = session.current(gateway, request)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in to the console first")
    return principal


PageUser = Annotated[Principal, Depends(_page_user)]
SignedIn = Annotated[Principal, Depends(_signed_in)]
ApiUser = Annotated[Principal, Depends(_api_user)]


def _guard(request: Request, gateway: Gateway) -> SignInGuard:
    """The app's sign-in limits, made from ``[console]`` with the first sign-in."""
    state = request.app.state
    if getattr(state, "console_sign_in", None) is None:
        c = gateway.settings.console
        state.console_sign_in = SignInGuard(
            per_address=c.sign_in_failures_per_address,
            per_name=c.sign_in_failures_per_name,
            overall=c.sign_in_failures_overall,
            window_s=c.sign_in_window_s,
            checks_at_once=c.password_checks_at_once,
            checks_waiting=c.password_checks_waiting,
            trusted_proxies=parse_networks(c.trusted_proxies),
        )
    guard: SignInGuard = state.console_sign_in
    return guard


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
    guard = _guard(request, gateway)
    # every attempt counts against its client address, keys too (a key is not worth
    # guessing, but each failure is still work); a password also against its name there
    address = guard.address(request)
    name = "" if key else name
    too_many = HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "too many failed sign-ins: wait a minute",
        headers={"Retry-After": str(int(guard.window_s))},
    )
    if guard.blocked(address, name):
        raise too_many
    if key:
        token = session.login(gateway, key)
    else:
        try:
            token = await guard.check(lambda: session.login_operator(gateway, name, password))
        except Busy:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many sign-ins at once: try again in a moment",
                headers={"Retry-After": "1"},
            ) from None
    if token is None:
        guard.failed(address, name)
        return RedirectResponse("/console/login?error=1", status.HTTP_303_SEE_OTHER)
    guard.succeeded(address, name)
    response = RedirectResponse("/console/security", status.HTTP_303_SEE_OTHER)
    session.set_cookie(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, gateway: GatewayDep, principal: SignedIn) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    session.check_csrf(request, (form.get("csrf") or [""])[0])
    session.logout(gateway, request)
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
        # the file name is made of the parsed days, never of the raw input (a CR/LF in it
        # broke the response header)
        name = f"energy-{_date(since_ms, 'since')}-{_date(until_ms, 'until')}.csv"
    except QueryError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return StreamingResponse(
        views.energy_csv(gateway, principal, since_ms, until_ms),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _date(ms: int, name: str) -> str:
    """Epoch ms -> ``YYYY-MM-DD`` (UTC); a time no calendar holds is a QueryError."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):
        raise QueryError(f"{name}: out of range") from None


def _day(text: str, end: bool = False) -> str:
    """``2026-11-21`` -> the day's first (or last) millisecond, UTC; other forms unchanged."""
    t = text.strip()
    if len(t) == 10 and t[4] == "-" and t[7] == "-":
        return f"{t}T23:59:59.999+00:00" if end else f"{t}T00:00:00+00:00"
    return t
