"""The embedded broker (no `[mqtt] url`) takes only the accounts of the community file, each
bound to its own session, like the files of `courtyard broker-config`; a broker that lets the
gateway in without an account is named in a warning at start."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import tomllib
from collections.abc import Callable

import pytest

from tests.support.broker import REGISTRY, Device
from tests.support.servers import GatewayProcess, Mosquitto
from tests.support.wait import wait_for

GATE = "community/c1/access/gate-north"


def forced(seq: int) -> bytes:
    return json.dumps({"ts": int(time.time() * 1000), "seq": seq, "event": "door_forced"}).encode()


def gate_events(gw: GatewayProcess) -> list[int]:
    conn = sqlite3.connect(gw.db)
    try:
        rows = conn.execute(
            "SELECT j.seq FROM journal j JOIN devices d ON d.id = j.device_id"
            " WHERE d.device = 'gate-north' AND j.kind = 1"
        ).fetchall()
    finally:
        conn.close()
    return [int(seq) for (seq,) in rows]


def test_the_embedded_broker_refuses_anonymous_clients(
    gateway_factory: Callable[..., GatewayProcess],
) -> None:
    gw = gateway_factory(mqtt_url=None, registry=REGISTRY)
    gw.start()
    conf = (gw.dir / "broker" / "mosquitto.conf").read_text()
    match = re.search(r"^listener (\d+) 127\.0\.0\.1$", conf, re.MULTILINE)
    assert match, conf
    port = int(match.group(1))

    # a local program without an account (it used to fake doors' acks and alarms)
    gateway_user = "courtyard-test"  # the gateway's account is named after its client id
    for user, password in ((None, None), ("gate-north", "guess"), (gateway_user, "guess")):
        with pytest.raises(ConnectionRefusedError):
            Device(port, user, password, client_id="intruder")

    # the door, with the password the gateway generated for it, reaches the gateway
    creds = tomllib.loads((gw.dir / "broker" / "credentials.toml").read_text())["accounts"]
    assert set(creds) == {gateway_user, "gate-north", "b3-entrance", "m-1"}
    door = Device(port, "gate-north", creds["gate-north"])
    try:
        assert door.publish(f"{GATE}/event", forced(1))
        # another door's topic is not the gate's to publish on
        door.publish("community/c1/access/b3-entrance/event", forced(2))
    finally:
        door.close()
    wait_for(lambda: gate_events(gw) == [1], 10, "the gate's own event")
    time.sleep(0.3)
    assert gate_events(gw) == [1]
    assert "accepts anonymous clients" not in gw.logs()


def test_a_broker_open_to_anonymous_clients_is_named_at_start(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProcess]
) -> None:
    gw = gateway_factory(mqtt_url=mosquitto.url)
    gw.start()
    wait_for(lambda: "accepts anonymous clients" in gw.logs(), 10, "the warning")
