"""Oversized numbers and non-finite ones in every parameter and body: a 4xx with a message,
never a 500, and every command attempt audited (issue 13, finding 15)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.community import community_file, dev

REGISTRY = community_file(devices=[dev("gate-north", secret="ab" * 16), dev("m-1", cls="meter")])
BIG = "9" * 400


@pytest.fixture
def gw(mosquitto, gateway_factory):
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=REGISTRY)
    gw.start()
    return gw


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/devices/m-1/readings?field=x&since={BIG}",
        f"/api/v1/devices/m-1/readings?field=x&until=-{BIG}",
        f"/api/v1/devices/m-1/readings?field=x&cursor={BIG}:1",
        f"/api/v1/devices/m-1/readings?field=x&cursor=1:{BIG}",
        f"/api/v1/devices/m-1/readings?field=x&every={BIG}s",
        f"/api/v1/devices/m-1/readings?field=x&limit={BIG}",
        f"/api/v1/events?since={BIG}",
        f"/api/v1/events?cursor={BIG}",
        f"/api/v1/audit?cursor={BIG}",
        f"/api/v1/audit?since={BIG}",
    ],
)
def test_oversized_query_numbers_are_400(gw, path):
    r = httpx.get(gw.api + path, headers={"Authorization": f"Bearer {gw.key}"})
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert r.json()["detail"]


def test_non_finite_and_oversized_command_bodies_are_422_and_audited(gw):
    headers = {"Authorization": f"Bearer {gw.key}", "content-type": "application/json"}
    unlock = f"{gw.api}/api/v1/doors/gate-north/unlock"
    bodies = [
        '{"seconds": NaN}',
        '{"seconds": Infinity}',
        '{"seconds": 1e400}',
        f'{{"seconds": {BIG}}}',
    ]
    for body in bodies:
        r = httpx.post(unlock, headers=headers, content=body)
        assert r.status_code == 422, (body, r.status_code, r.text[:200])
        assert r.json()["detail"]
    command = f"{gw.api}/api/v1/devices/gate-north/commands"
    r = httpx.post(
        command, headers=headers, content=f'{{"action": "unlock", "args": {{"seconds": {BIG}}}}}'
    )
    assert r.status_code == 422, (r.status_code, r.text[:200])
    entries = gw.get("/api/v1/audit", device="gate-north").json()["entries"]
    assert len(entries) == len(bodies) + 1
    assert {e["outcome"] for e in entries} == {"bad_request"}
    assert all(e["principal"] == "platform-key-0" and e["reason"] for e in entries)
    assert "Traceback" not in gw.logs()
