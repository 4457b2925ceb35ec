"""`courtyard broker-config` output, loaded by a real Mosquitto: per-device accounts and ACLs."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.broker import REGISTRY, broker_config, broker_from_generated_files
from tests.support.wait import wait_for

GATE = "community/c1/access/gate-north"
ENTRANCE = "community/c1/access/b3-entrance"


class Client:
    """A paho MQTT 5 client that records what it receives and the broker's answers."""

    def __init__(self, port: int, user: str, password: str | None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.connect_rc: Any = None
        self.suback: list[Any] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connect_rc = rc

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, msg.payload))

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
        self.suback.extend(codes)

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.received]

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: self.suback, 5, f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes = b'{"x":1}') -> None:
        props = Properties(PacketTypes.PUBLISH)
        info = self.client.publish(topic, payload, qos=1, properties=props)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], Path]]:
    with broker_from_generated_files(tmp_path, REGISTRY, persistence=False) as broker:
        assert "4 accounts (4 new passwords)" in broker.stdout
        for password in broker.creds.values():
            assert password not in broker.stdout
        yield broker.port, broker.creds, broker.out


def test_generated_files(tmp_path: Path, secured: tuple[int, dict[str, str], Path]) -> None:
    _, creds, out = secured
    assert set(creds) == {"courtyard", "gate-north", "b3-entrance", "m-1"}
    assert (out / "credentials.toml").stat().st_mode & 0o077 == 0
    passwd = (out / "passwd").read_text()
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in passwd.splitlines())
    for password in creds.values():
        assert password not in passwd and password not in (out / "acl").read_text()
    acl = (out / "acl").read_text()
    assert f"user gate-north\ntopic write {GATE}/telemetry\n" in acl
    assert f"topic read {GATE}/cmd" in acl and f"topic write {GATE}/cmd" not in acl
    # a second run keeps every password, and its hash
    broker_config(tmp_path / "community.toml", out)
    assert tomllib.loads((out / "credentials.toml").read_text())["accounts"] == creds
    assert (out / "passwd").read_text() == passwd


def test_device_credentials_reach_only_their_own_topics(
    secured: tuple[int, dict[str, str], Path],
) -> None:
    port, creds, _ = secured
    # anonymous and a wrong password are refused
    for user, password in (("gate-north", None), ("gate-north", "wrong"), ("nobody", "x")):
        c = Client(port, user, password)
        wait_for(lambda c=c: c.connect_rc is not None, 5, "CONNACK")
        assert c.connect_rc.is_failure, (user, c.connect_rc)
        c.close()

    gateway = Client(port, "courtyard", creds["courtyard"])
    gate = Client(port, "gate-north", creds["gate-north"])
    entrance = Client(port, "b3-entrance", creds["b3-entrance"])
    try:
        for c in (gateway, gate, entrance):
            wait_for(lambda c=c: c.connect_rc is not None, 5, "CONNACK")
            assert not c.connect_rc.is_failure
        gateway.subscribe("community/#")
        entrance.subscribe(f"{ENTRANCE}/cmd")

        # the device's own topics: delivered
        for message in ("telemetry", "event", "status", "ack"):
            gate.publish(f"{GATE}/{message}")
        wait_for(lambda: len(gateway.topics()) == 4, 5, "own topics delivered")

        # another device's topics, and any cmd topic (its own included): dropped by the broker
        for message in ("telemetry", "event", "status", "ack", "cmd"):
            gate.publish(f"{ENTRANCE}/{message}")
        gate.publish(f"{GATE}/cmd")
        gate.publish("community/c1/meter/m-1/telemetry")
        gate.subscribe(f"{ENTRANCE}/cmd")  # spying on another door's commands
        # the gateway's commands go through, to the right door only
        gateway.publish(f"{ENTRANCE}/cmd", b'{"id":"from-gateway"}')
        wait_for(lambda: entrance.topics() == [f"{ENTRANCE}/cmd"], 5, "gateway cmd delivered")
        time.sleep(0.5)
        assert sorted(gateway.topics()) == sorted(
            [f"{GATE}/{m}" for m in ("telemetry", "event", "status", "ack")]
            + [f"{ENTRANCE}/cmd"]  # the gateway's own command, echoed to its subscription
        )
        assert entrance.received == [(f"{ENTRANCE}/cmd", b'{"id":"from-gateway"}')]
        assert gate.topics() == []
    finally:
        for c in (gateway, gate, entrance):
            c.close()
