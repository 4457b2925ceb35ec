"""Dependencies shared by the routers: the running gateway and the caller's identity."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from gateway.service import Gateway
from gateway.store.journal import DeviceState


def get_gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a platform key (``communities`` None: all of them)."""

    kind: str
    name: str
    communities: frozenset[str] | None

    def may_see(self, community: str) -> bool:
        return self.communities is None or community in self.communities


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <platform key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def platform_principal(request: Request, gateway: GatewayDep) -> Principal:
    token = _bearer(request).encode()
    for i, key in enumerate(gateway.settings.auth.platform_keys):
        if hmac.compare_digest(token, key.key.encode()):
            scope = None if key.communities is None else frozenset(key.communities)
            return Principal("platform", f"platform-key-{i}", scope)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
    )


PlatformDep = Annotated[Principal, Depends(platform_principal)]


def visible_device(gateway: Gateway, principal: Principal, device: str) -> DeviceState:
    """The device, if it exists and the caller may see it; 404 otherwise (no existence leak)."""
    st = gateway.store.devices.get(device)
    if st is None or not principal.may_see(st.community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r}")
    return st
