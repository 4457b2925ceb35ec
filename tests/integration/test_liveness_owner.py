"""One owner of liveness: the gateway process marks a device offline when, and only when, the
rules engine decides it is (its configurable ``silent_periods``), never on a rule of its own."""

from __future__ import annotations

import json
import time

from tests.support.community import device, registry
from tests.support.wait import wait_for


def test_offline_in_the_store_only_with_the_offline_alert(mosquitto, gateway_factory, publisher):
    gw = gateway_factory(
        mqtt_url=mosquitto.url,
        registry=registry(0, device("door-x", "access", 1)),
        extra="\n[rules.device_offline]\nsilent_periods = 10\n",
    )
    gw.start()
    body = {"ts": int(time.time() * 1000), "seq": 1, "door_open": False}
    publisher.publish("community/c1/access/door-x/telemetry", json.dumps(body))
    last = time.time()

    def online() -> bool | None:
        return gw.get("/api/v1/devices/door-x").json()["online"]

    wait_for(lambda: online() is True, what="door online")
    # 3.5 to 8 periods of silence: under the rule's 10, so neither an alert nor offline
    while time.time() - last < 3.5:
        time.sleep(0.1)
    while time.time() - last < 8.0:
        assert online() is True, "offline in the store while the rules say online"
        assert gw.get("/api/v1/alerts", status="active").json()["alerts"] == []
        time.sleep(0.25)
    wait_for(lambda: online() is False, what="door offline after 10 periods")
    alerts = gw.get("/api/v1/alerts", status="active").json()["alerts"]
    assert [(a["device"], a["rule"]) for a in alerts] == [("door-x", "device_offline")]
