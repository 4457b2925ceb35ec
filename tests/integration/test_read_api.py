"""The read API over HTTP against a running gateway fed through a real broker."""

from __future__ import annotations

import json
import time

import httpx

from tests.support.community import community_file, dev
from tests.support.wait import wait_for

SCOPED = "scoped-key-for-c2-only-0001"
REGISTRY = community_file(
    communities=["c1", "c2"],
    buildings={"b1": "c1"},
    devices=[
        dev("m-1", cls="meter", building="b1", expect_every_s=60),
        dev("gate-north"),
        dev("m-2", "c2", "meter"),
    ],
)


def test_read_api(mosquitto, gateway_factory, publisher):
    gw = gateway_factory(
        mqtt_url=mosquitto.url,
        registry=REGISTRY,
        extra=f'\n[[auth.platform_keys]]\nkey = "{SCOPED}"\ncommunities = ["c2"]\n',
    )
    # the config above adds a second, scoped key beside the all-communities one
    cfg = (gw.dir / "courtyard.toml").read_text()
    cfg = cfg.replace(f'platform_keys = ["{gw.key}"]', "")
    cfg += f'\n[[auth.platform_keys]]\nkey = "{gw.key}"\n'
    (gw.dir / "courtyard.toml").write_text(cfg)
    gw.start()

    t0 = (int(time.time() * 1000) - 600_000) // 60_000 * 60_000
    for i in range(300):  # five minutes, a point a second
        publisher.publish(
            "community/c1/meter/m-1/telemetry",
            json.dumps(
                {"ts": t0 + i * 1000, "seq": i, "energy_kwh": 10 + i / 100, "power_w": i % 60}
            ),
            qos=0,
        )
    publisher.publish(
        "community/c1/meter/m-1/telemetry",
        json.dumps({"ts": t0 + 300_000, "seq": 300, "energy_kwh": 13.0, "power_w": 1}),
    )
    publisher.publish(
        "community/c1/access/gate-north/event",
        json.dumps(
            {
                "ts": t0 + 5000,
                "event": "access_denied",
                "credential": "card:77",
                "method": "card",
                "reason": "unknown_card",
            }
        ),
    )
    publisher.publish("community/c2/meter/m-2/status", b"online", retain=True)

    wait_for(
        lambda: (
            gw.get("/api/v1/devices/m-1").json()["latest"].get("energy_kwh", {}).get("value")
            == 13.0
        ),
        what="latest reading",
    )

    # auth
    assert httpx.get(f"{gw.api}/api/v1/devices").status_code == 401
    bad = httpx.get(f"{gw.api}/api/v1/devices", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert httpx.get(f"{gw.api}/metrics").status_code == 401
    assert httpx.get(f"{gw.api}/healthz").status_code == 200

    # the device and its latest values with units
    m1 = gw.get("/api/v1/devices/m-1").json()
    assert m1["online"] is True and m1["building"] == "b1" and m1["registered"] is True
    assert m1["latest"]["energy_kwh"]["unit"] == "kWh"
    assert m1["latest"]["power_w"]["unit"] == "W"
    assert gw.get("/api/v1/devices/nope").status_code == 404

    # raw history, paged
    since, until = str(t0), str(t0 + 299_000)
    r = gw.get(
        "/api/v1/devices/m-1/readings", field="power_w", since=since, until=until, limit=200
    ).json()
    assert r["unit"] == "W" and len(r["points"]) == 200 and r["next_cursor"]
    r2 = gw.get(
        "/api/v1/devices/m-1/readings",
        field="power_w",
        since=since,
        until=until,
        limit=200,
        cursor=r["next_cursor"],
    ).json()
    assert len(r2["points"]) == 100 and r2["next_cursor"] is None
    assert [p["ts"] for p in r["points"] + r2["points"]] == [t0 + i * 1000 for i in range(300)]

    # downsampled: mean per minute for a gauge, last value for a counter
    d = gw.get(
        "/api/v1/devices/m-1/readings", field="power_w", since=since, until=until, every="1m"
    ).json()
    assert [p["ts"] for p in d["points"]] == [t0 + k * 60_000 for k in range(5)]
    assert d["points"][0]["value"] == sum(range(60)) / 60
    c = gw.get(
        "/api/v1/devices/m-1/readings", field="energy_kwh", since=since, until=until, every="1m"
    ).json()
    assert c["points"][0]["value"] == 10 + 59 / 100

    # bad parameters are 400 with a message
    for params in (
        {"field": "power_w", "every": "fortnight"},
        {"field": "power_w", "since": "soon"},
        {},
    ):
        resp = gw.get("/api/v1/devices/m-1/readings", **params)
        assert resp.status_code == 400 and resp.json()["detail"]

    # events
    ev = gw.get("/api/v1/events", device="gate-north").json()["events"]
    assert [(e["event"], e["attrs"]["reason"]) for e in ev] == [("access_denied", "unknown_card")]

    # a key scoped to c2 sees c2 only
    scoped = httpx.get(f"{gw.api}/api/v1/devices", headers={"Authorization": f"Bearer {SCOPED}"})
    assert [d["id"] for d in scoped.json()["devices"]] == ["m-2"]
    hidden = httpx.get(
        f"{gw.api}/api/v1/devices/m-1/readings",
        headers={"Authorization": f"Bearer {SCOPED}"},
        params={"field": "power_w"},
    )
    assert hidden.status_code == 404
    scoped_events = httpx.get(
        f"{gw.api}/api/v1/events", headers={"Authorization": f"Bearer {SCOPED}"}
    ).json()["events"]
    assert scoped_events == []

    metrics = gw.get("/metrics").text
    assert 'courtyard_devices{state="online"} 3' in metrics  # m-1, gate-north, m-2
    assert "courtyard_mqtt_connected 1" in metrics
