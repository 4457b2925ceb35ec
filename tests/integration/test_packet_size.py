"""The gateway's Maximum Packet Size, against a real Mosquitto: a device's oversized message is
never sent to the gateway, and the gateway's connection and the flow go on."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from gateway.mqtt.codec import PACKET_HEADROOM
from tests.integration.conftest import Publisher
from tests.support.servers import GatewayProcess, Mosquitto
from tests.support.wait import wait_for

T = "community/c1/meter/m-1/telemetry"
MAX_PAYLOAD = 65536  # [store] max_payload_bytes, the default


def metric(gw: GatewayProcess, name: str) -> float:
    for line in gw.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_an_oversized_message_never_reaches_the_gateway(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProcess], publisher: Publisher
) -> None:
    gw = gateway_factory(mqtt_url=mosquitto.url)
    gw.start()
    # the broker acknowledges these to the device (it sets no packet limit of its own)
    publisher.publish(T, b"x" * (20 * 1024 * 1024))
    publisher.publish(T, b"x" * (MAX_PAYLOAD + PACKET_HEADROOM))
    near = b"x" * (MAX_PAYLOAD + 100)  # a little over: still reaches the gateway, dead-lettered
    publisher.publish(T, near)
    publisher.publish(T, json.dumps({"ts": int(time.time() * 1000), "power_w": 5.0}))

    db = sqlite3.connect(gw.db)
    try:
        wait_for(
            lambda: db.execute("SELECT count(*) FROM journal WHERE kind = 0").fetchone()[0] == 1,
            what="the reading after the oversized messages",
        )
        wait_for(lambda: db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] >= 1)
        letters = db.execute("SELECT reason, size FROM dead_letters").fetchall()
    finally:
        db.close()
    assert letters == [("too_large", len(near))]
    # what the gateway read from the broker: the one near-limit payload, not the 20 MiB one
    received = metric(gw, "courtyard_mqtt_received_bytes_total")
    assert len(near) < received < 2 * len(near)
    assert metric(gw, "courtyard_mqtt_connected") == 1
    assert metric(gw, "courtyard_mqtt_reconnects_total") == 0
