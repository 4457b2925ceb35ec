"""Platform key scopes against the gateway process: /metrics needs the `metrics` scope or a
key for every community; a `metrics`-only key can neither read devices nor open a door; a key
without scopes keeps its old meaning everywhere else."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.broker import REGISTRY
from tests.support.servers import GatewayProcess

pytestmark = pytest.mark.integration

ALL = "key-for-every-community-0123456789"
C1 = "key-for-c1-only-without-scopes-0123"
METRICS = "key-with-the-metrics-scope-only-0123"
READER = "key-for-c1-that-may-only-read-0123"
KEYS = f"""platform_keys = [
  "{ALL}",
  {{ key = "{C1}", communities = ["c1"] }},
  {{ key = "{METRICS}", scopes = ["metrics"] }},
  {{ key = "{READER}", communities = ["c1"], scopes = ["read"] }},
]
"""


def call(gw: GatewayProcess, key: str, method: str, path: str, body: object = None) -> int:
    r = httpx.request(
        method,
        f"{gw.api}{path}",
        headers={"Authorization": f"Bearer {key}"},
        json=body if body is not None else {} if method == "POST" else None,
        timeout=10,
    )
    return r.status_code


def test_scopes_decide_what_a_key_may_do(gateway_factory: Callable[..., GatewayProcess]) -> None:
    gw = gateway_factory(mqtt_url=None, registry=REGISTRY, platform_key=ALL)
    config = gw.dir / "courtyard.toml"
    config.write_text(config.read_text().replace(f'platform_keys = ["{ALL}"]\n', KEYS))
    gw.start()
    metrics, devices = "/metrics", "/api/v1/devices"
    unlock, ack = "/api/v1/doors/gate-north/unlock", "/api/v1/alerts/999999/ack"

    # /metrics shows every community's counts
    assert call(gw, ALL, "GET", metrics) == 200
    assert call(gw, METRICS, "GET", metrics) == 200
    assert call(gw, C1, "GET", metrics) == 403  # a key of c1 only, without the scope
    assert call(gw, READER, "GET", metrics) == 403

    # a metrics-only key reads no device and opens no door
    assert call(gw, METRICS, "GET", devices) == 403
    assert call(gw, METRICS, "GET", "/api/v1/events/stream") == 403
    assert call(gw, METRICS, "POST", unlock) == 403
    assert call(gw, METRICS, "POST", ack) == 403

    # a read-only key reads, and changes nothing
    assert call(gw, READER, "GET", devices) == 200
    assert call(gw, READER, "POST", unlock) == 403
    assert call(gw, READER, "POST", ack) == 403

    # keys without scopes: as before (the door is offline: 503, after authorisation)
    assert call(gw, C1, "GET", devices) == 200
    assert call(gw, C1, "POST", ack) == 404
    assert call(gw, C1, "POST", unlock) == 503

    # revoking a resident is a change (write), within the key's communities
    revoke, c1 = "/api/v1/residents/r-1/revoke", {"community": "c1"}
    assert call(gw, READER, "POST", revoke, c1) == 403
    assert call(gw, METRICS, "POST", revoke, c1) == 403
    assert call(gw, C1, "POST", revoke, {"community": "c2"}) == 404
    assert call(gw, C1, "POST", revoke, c1) == 200
