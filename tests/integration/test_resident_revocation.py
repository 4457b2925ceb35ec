"""Revoking a resident against the gateway process: `POST /api/v1/residents/{sub}/revoke`
refuses that resident's tokens issued before the revocation, at once and after a restart; the
configured audience and issuer are required of every token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.support.broker import REGISTRY
from tests.support.servers import GatewayProcess

pytestmark = pytest.mark.integration

SECRET = "integration-resident-secret-0123456789abcdef"
AUTH = f'jwt_secret = "{SECRET}"\njwt_audience = "courtyard-it"\njwt_issuer = "residents-it"\n'


def resident(sub: str = "r-7", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": sub, "community": "c1", "building": "b3", "iat": now, "exp": now + 600}
    body |= {"aud": "courtyard-it", "iss": "residents-it", **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def status_of(gw: GatewayProcess, token: str) -> int:
    """401: the token is refused; 403: it authenticates (a resident may not list devices)."""
    r = httpx.get(f"{gw.api}/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (401, 403), r.text
    return r.status_code


def revoke(gw: GatewayProcess, sub: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.api}/api/v1/residents/{sub}/revoke",
        json=body,
        headers={"Authorization": f"Bearer {gw.key}"},
    )


def test_a_revoked_resident_is_refused_now_and_after_a_restart(
    gateway_factory: Callable[..., GatewayProcess],
) -> None:
    gw = gateway_factory(mqtt_url=None, registry=REGISTRY)
    config = gw.dir / "courtyard.toml"
    config.write_text(config.read_text().replace("[auth]\n", f"[auth]\n{AUTH}"))
    gw.start()
    token, neighbour = resident(iat=int(time.time()) - 5), resident("r-8")
    assert status_of(gw, token) == 403 and status_of(gw, neighbour) == 403

    # a token for another audience, from another issuer, or for ever: refused
    assert status_of(gw, resident(aud="another-service")) == 401
    assert status_of(gw, resident(iss="someone-else")) == 401
    assert status_of(gw, resident(exp=253402300799)) == 401

    r = revoke(gw, "r-7", community="c1")
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == "r-7" and r.json()["revoked_before"] <= time.time() * 1000 + 1
    assert status_of(gw, token) == 401  # remembered by the gateway, refused all the same
    assert status_of(gw, neighbour) == 403
    assert revoke(gw, "r-7", community="c9").status_code == 404  # no such community

    gw.stop()
    gw.start()
    assert status_of(gw, token) == 401  # the revocation is in the store
    time.sleep(1.1)  # iat has whole seconds: the next one is after the revocation
    assert status_of(gw, resident()) == 403  # the resident signs in anew
