"""Console sessions on top of :mod:`gateway.api.deps`: login, the cookie, CSRF tokens.

The session token itself (``issue_session`` / ``verify_session``, HMAC-signed, with an expiry)
lives in ``gateway/api/deps.py`` because the event stream accepts it too. This module adds what
only the console needs: checking a platform key or an operator account at login, setting and
clearing the cookie, and a CSRF token bound to the session (the page sends it back in a
header).
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, Response, status

from gateway.api.deps import SESSION_COOKIE, end_session, issue_session, verify_session
from gateway.auth import PLATFORM, READ, AuthError, Principal
from gateway.console.password import verify
from gateway.service import Gateway

SESSION_TTL_S = 12 * 3600
CSRF_HEADER = "x-csrf-token"


def login(gateway: Gateway, key: str) -> str | None:
    """A session token for a valid platform key; None otherwise (no reason: nothing leaks)."""
    try:
        principal = gateway.authenticator.authenticate(key.strip())
    except AuthError:
        return None
    if principal.kind != PLATFORM or not principal.allows(READ):
        return None  # the console shows devices: a key that may not read them may not sign in
    return issue_session(
        gateway, principal.name, principal.communities, SESSION_TTL_S, principal.scopes
    )


def login_operator(gateway: Gateway, name: str, password: str) -> str | None:
    """A session token for an operator account of ``[console]`` with this password (scrypt,
    slow on purpose: call it from a worker thread); None otherwise."""
    found = next((o for o in gateway.settings.console.operators if o.name == name), None)
    ok = verify(password, found.password_hash if found is not None else None)
    if found is None or not ok:
        return None
    scope = None if found.communities is None else frozenset(found.communities)
    return issue_session(gateway, f"operator:{found.name}", scope, SESSION_TTL_S)


def set_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def logout(gateway: Gateway, request: Request) -> None:
    """End the request's session on the server too: the cookie no longer works, wherever a
    copy of it is."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end_session(gateway, token)


def current(gateway: Gateway, request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return verify_session(gateway, token) if token else None


def csrf_token(request: Request) -> str:
    """Bound to the session cookie: a token from another session does not pass."""
    return csrf_for(request.cookies.get(SESSION_COOKIE, ""))


def csrf_for(cookie: str) -> str:
    """The CSRF token of the session whose cookie is ``cookie``."""
    return hmac.new(cookie.encode(), b"courtyard-console-csrf", hashlib.sha256).hexdigest()


def check_csrf(request: Request, sent: str | None) -> None:
    """403 unless the request carries this session's CSRF token and, when the browser names
    it, comes from this origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")
    if not sent or not hmac.compare_digest(sent, csrf_token(request)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
