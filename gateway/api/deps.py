"""Dependencies shared by the routers: the running gateway and the caller's identity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from gateway.adapters.push import PushIngest
from gateway.audit import AuditLog
from gateway.auth import COMMAND, METRICS, READ, WRITE, AuthError, Principal
from gateway.commands import CommandService
from gateway.rules.service import Alerting
from gateway.service import Gateway
from gateway.store.journal import DeviceState, Store
from gateway.store.queries import Queries


def get_gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


# FastAPI runs a plain ``def`` dependency in its thread pool: one thread hop per dependency
# per request (measured: most of an unlock's cost under 50 concurrent residents). The
# dependencies below are ``async def`` wrappers of the plain functions, which stay callable.
async def _gateway_dep(request: Request) -> Gateway:
    return get_gateway(request)


GatewayDep = Annotated[Gateway, Depends(_gateway_dep)]


# Narrow dependencies: what a route needs of the gateway, and no more.
async def _alerting_dep(request: Request) -> Alerting:
    return get_gateway(request).alerting


async def _commands_dep(request: Request) -> CommandService:
    return get_gateway(request).commands


async def _queries_dep(request: Request) -> Queries:
    return get_gateway(request).queries


async def _store_dep(request: Request) -> Store:
    return get_gateway(request).store


async def _audit_dep(request: Request) -> AuditLog:
    return get_gateway(request).audit


async def _push_dep(request: Request) -> PushIngest:
    return get_gateway(request).push


AlertingDep = Annotated[Alerting, Depends(_alerting_dep)]
CommandsDep = Annotated[CommandService, Depends(_commands_dep)]
QueriesDep = Annotated[Queries, Depends(_queries_dep)]
StoreDep = Annotated[Store, Depends(_store_dep)]
AuditDep = Annotated[AuditLog, Depends(_audit_dep)]
PushDep = Annotated[PushIngest, Depends(_push_dep)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <platform key or resident token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def scope_for(request: Request) -> str:
    """The scope a request needs of a platform key: ``metrics`` for ``/metrics``,
    ``command`` for an unlock or a device command, ``read`` for a GET, ``write`` for any
    other change. Decided here, for every route at once, so that no route can forget it."""
    path: str = request.scope["path"]
    if path == "/metrics":
        return METRICS
    if request.method in ("GET", "HEAD"):
        return READ
    if path.endswith(("/unlock", "/commands")):
        return COMMAND
    return WRITE


def require_scope(principal: Principal, request: Request) -> Principal:
    """403 unless ``principal`` may do what ``request`` asks (see :func:`scope_for`)."""
    scope = scope_for(request)
    if not principal.allows(scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks the {scope!r} scope")
    return principal


def any_principal(request: Request, gateway: GatewayDep) -> Principal:
    """A platform key with the scope the request needs (403 otherwise), or a resident JWT
    (401 otherwise)."""
    try:
        principal = gateway.authenticator.authenticate(_bearer(request))
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    # request.scope, not request.url: the unlock passes here, and a URL object costs
    if principal.scopes is not None or request.scope["path"] == "/metrics":
        require_scope(principal, request)
    return principal


async def _any_principal_dep(request: Request, gateway: GatewayDep) -> Principal:
    return any_principal(request, gateway)


AnyPrincipalDep = Annotated[Principal, Depends(_any_principal_dep)]


def platform_principal(principal: AnyPrincipalDep) -> Principal:
    """A platform key; a resident token is authenticated but not allowed here (403)."""
    if principal.kind != "platform":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs a platform key")
    return principal


async def _platform_dep(principal: AnyPrincipalDep) -> Principal:
    return platform_principal(principal)


PlatformDep = Annotated[Principal, Depends(_platform_dep)]

# -- console sessions (a cookie, since a browser's EventSource cannot send headers) ----------

SESSION_COOKIE = "courtyard_session"


def _session_key(gateway: Gateway) -> bytes | None:
    """Derived from the configured secrets: sessions end when those change; none configured,
    no sessions."""
    auth = gateway.settings.auth
    material = [k.key for k in auth.platform_keys] + [auth.jwt_secret]
    if not any(material):
        return None
    return hashlib.sha256("\0".join(["courtyard-session-v1", *material]).encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def session_generation(gateway: Gateway, name: str) -> str | None:
    """A fingerprint of the credential that session user ``name`` signs in with, as it is
    configured now (``operator:<name>`` or a platform key's name); None when it is configured
    no more. A session carries the fingerprint of its sign-in: removing the operator or the
    key, or changing its password, key or communities, ends its sessions (at the restart
    that reads the new configuration). Keyed with the session key: it reveals nothing."""
    key = _session_key(gateway)
    if key is None:
        return None
    if name.startswith("operator:"):
        ops = gateway.settings.console.operators
        op = next((o for o in ops if o.name == name.removeprefix("operator:")), None)
        if op is None:
            return None
        scope = None if op.communities is None else sorted(op.communities)
        material = json.dumps(["operator", op.name, op.password_hash, scope])
    else:
        index = name.removeprefix("platform-key-")
        keys = gateway.settings.auth.platform_keys
        if not index.isdigit() or int(index) >= len(keys):
            return None
        k = keys[int(index)]
        scope = None if k.communities is None else sorted(k.communities)
        scopes = None if k.scopes is None else sorted(k.scopes)
        material = json.dumps(["key", k.key, scope, scopes])
    return _b64(hmac.new(key, material.encode(), hashlib.sha256).digest()[:16])


def issue_session(
    gateway: Gateway,
    name: str,
    communities: frozenset[str] | None,
    ttl_s: int = 43200,
    scopes: frozenset[str] | None = None,
) -> str:
    """A console session token: ``payload.signature``, HMAC-SHA256 over the payload. The
    payload names the user, its scope, the expiry, a random session id (a sign-out revokes
    it) and the fingerprint of the credential it signed in with."""
    key = _session_key(gateway)
    generation = session_generation(gateway, name)
    if key is None or generation is None:
        raise RuntimeError("no secret configured to sign console sessions, or no such user")
    claims = {
        "sub": name,
        "communities": None if communities is None else sorted(communities),
        "exp": int(time.time()) + ttl_s,
        "sid": secrets.token_urlsafe(16),
        "gen": generation,
    }
    if scopes is not None:  # a key's scopes hold in its console sessions too
        claims["scopes"] = sorted(scopes)
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"


def session_claims(gateway: Gateway, token: str) -> dict[str, Any] | None:
    """The claims of a session token that is genuine, unexpired, not signed out and whose
    user is still configured as it was at sign-in; None otherwise."""
    key = _session_key(gateway)
    payload, _, sig = token.partition(".")
    if key is None or not payload or not sig:
        return None
    good = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(good, sig):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(claims, dict) or int(claims["exp"]) < time.time():
            return None
        sid, generation = claims["sid"], claims["gen"]
        if not isinstance(sid, str) or gateway.revocations.session_revoked(sid):
            return None
        current = session_generation(gateway, str(claims["sub"]))
        if current is None or not hmac.compare_digest(current, str(generation)):
            return None
        return claims
    except (ValueError, KeyError, TypeError):
        return None


def verify_session(gateway: Gateway, token: str) -> Principal | None:
    """The console user of a valid session token (see :func:`session_claims`); None
    otherwise."""
    claims = session_claims(gateway, token)
    if claims is None:
        return None
    try:
        scope, scopes = claims.get("communities"), claims.get("scopes")
        return Principal(
            "console",
            str(claims["sub"]),
            None if scope is None else frozenset(scope),
            scopes=None if scopes is None else frozenset(scopes),
        )
    except (KeyError, TypeError):
        return None


def end_session(gateway: Gateway, token: str) -> None:
    """Sign a session out for good: its id is revoked until it would have expired."""
    claims = session_claims(gateway, token)
    if claims is not None:
        gateway.revocations.revoke_session(str(claims["sid"]), int(claims["exp"]) * 1000)


def platform_or_session(request: Request, gateway: GatewayDep) -> Principal:
    """A platform key in the Bearer header, or the console's session cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not request.headers.get("authorization") and cookie:
        principal = verify_session(gateway, cookie)
        if principal is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or expired session")
        return require_scope(principal, request)
    return platform_principal(any_principal(request, gateway))


PlatformOrSessionDep = Annotated[Principal, Depends(platform_or_session)]


def visible_device(store: Store, principal: Principal, device: str) -> DeviceState:
    """The device, if it exists and the caller may see it; 404 otherwise (no existence leak)."""
    st = store.devices.get(device)
    if st is None or not principal.may_see(st.community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r}")
    return st
