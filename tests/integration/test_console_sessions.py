"""Console sessions against the gateway process: a sign-out ends the session for every copy of
its cookie, across a restart, and an operator removed from the configuration is signed out by
the restart that reads it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.console.password import hash_password
from tests.support.broker import REGISTRY
from tests.support.servers import GatewayProcess

pytestmark = pytest.mark.integration

PASSWORD = "night shift at the gate"
OPERATOR = (
    '\n[console]\noperators = [{ name = "guard",'
    f' password_hash = "{hash_password(PASSWORD)}" }}]\n'
)


def sign_in(gw: GatewayProcess) -> str:
    r = httpx.post(f"{gw.api}/console/login", data={"operator": "guard", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/console/security", r.text
    return str(r.cookies["courtyard_session"])


def signed_in(gw: GatewayProcess, cookie: str) -> bool:
    """A page answers 200 to a valid session and sends anyone else to the sign-in page; the
    live stream, which takes the cookie too, answers 401."""
    jar = {"courtyard_session": cookie}
    page = httpx.get(f"{gw.api}/console/devices", cookies=jar, follow_redirects=False)
    assert page.status_code in (200, 303), page.text
    with httpx.stream("GET", f"{gw.api}/api/v1/events/stream", cookies=jar, timeout=10) as r:
        stream_ok = r.status_code == 200
    assert stream_ok == (page.status_code == 200)
    return page.status_code == 200


def sign_out(gw: GatewayProcess, cookie: str) -> None:
    jar = {"courtyard_session": cookie}
    page = httpx.get(f"{gw.api}/console/security", cookies=jar).text
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    r = httpx.post(f"{gw.api}/console/logout", data={"csrf": csrf}, cookies=jar)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_sign_out_and_removal_end_sessions_across_restarts(
    gateway_factory: Callable[..., GatewayProcess],
) -> None:
    gw = gateway_factory(mqtt_url=None, registry=REGISTRY, extra=OPERATOR)
    gw.start()
    left, kept = sign_in(gw), sign_in(gw)
    assert signed_in(gw, left) and signed_in(gw, kept)

    sign_out(gw, left)
    assert not signed_in(gw, left)  # a copy of the cookie no longer works
    assert signed_in(gw, kept)

    gw.stop()
    gw.start()
    assert not signed_in(gw, left)  # the sign-out outlives the restart
    assert signed_in(gw, kept)

    config = gw.dir / "courtyard.toml"
    config.write_text(config.read_text().replace(OPERATOR, "\n"))
    gw.stop()
    gw.start()
    assert not signed_in(gw, kept)  # the operator is gone, and so are its sessions
