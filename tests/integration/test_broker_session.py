"""The gateway's broker session against a device's password, on a real Mosquitto started with
the files `courtyard broker-config` writes (nothing added but persistence and a log).

A device account used to be able to connect with the gateway's client id: Mosquitto handed it
the gateway's persistent session, dropped every other device's messages against the device's
read ACL after acknowledging them, and the two connections kept kicking each other. A clean
start with that id, while the gateway was away, erased everything queued for it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sqlite3
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_stubs.community import Community, load_credentials
from gateway.mqtt.broker import free_port
from tests.integration.conftest import wait_for
from tests.integration.servers import GatewayProcess, need, wait_port
from tests.integration.test_broker_acl import REGISTRY, broker_config

ENTRANCE = "community/c1/access/b3-entrance"
METER = "community/c1/meter/m-1"
GATEWAY_CLIENT_ID = "courtyard-test"  # what GatewayProcess configures as [mqtt] client_id


@dataclass
class Broker:
    port: int
    creds: dict[str, str]
    log: Path


@contextlib.contextmanager
def broker_from_generated_files(workdir: Path, registry: str) -> Iterator[Broker]:
    community = workdir / "community.toml"
    community.write_text(registry)
    out = workdir / "broker-auth"
    port = free_port()
    broker_config(community, out, "--listen", f"127.0.0.1:{port}")
    creds = tomllib.loads((out / "credentials.toml").read_text())["accounts"]
    data = workdir / "broker-data"
    data.mkdir()
    log = workdir / "mosquitto.log"
    conf = workdir / "mosquitto.conf"
    # only what the operator's own broker would add: who it runs as, persistence, a log
    conf.write_text(
        (out / "mosquitto.conf").read_text()
        + f"\nuser {getpass.getuser()}\npersistence true\npersistence_location {data}/\n"
        + f"log_dest file {log}\nlog_type all\n"
    )
    proc = subprocess.Popen([need("mosquitto", "mosquitto"), "-c", str(conf)])
    try:
        wait_port("127.0.0.1", port)
        yield Broker(port, creds, log)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def generated_broker(tmp_path: Path) -> Iterator[Broker]:
    with broker_from_generated_files(tmp_path, REGISTRY) as broker:
        yield broker


def start_gateway(
    broker: Broker,
    registry: str,
    gateway_factory: Callable[..., GatewayProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> GatewayProcess:
    # the gateway's own account, from credentials.toml (the environment overrides the file)
    monkeypatch.setenv("COURTYARD_MQTT_USERNAME", "courtyard")
    monkeypatch.setenv("COURTYARD_MQTT_PASSWORD", broker.creds["courtyard"])
    gw = gateway_factory(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", registry=registry)
    gw.start()
    return gw


class Device:
    """A device's own account over paho, counting what the broker acknowledged to it. A
    refused login raises ConnectionRefusedError; ``user=None`` connects without an account."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        clean_start: bool = True,
    ) -> None:
        self.received: list[str] = []
        self.connects = 0
        self.disconnects = 0
        self.refused: Any = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or user or "",
            protocol=mqtt.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        wait_for(lambda: self.connects or self.refused, 10, f"{user} connected")
        if self.refused is not None:
            self.close()
            raise ConnectionRefusedError(f"{user}: {self.refused}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.refused = rc
        else:
            self.connects += 1

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnects += 1

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg.topic)

    def publish(self, topic: str, payload: bytes, timeout: float = 10) -> bool:
        """True once the broker acknowledged it (PUBACK)."""
        info = self.client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):  # the connection went away meanwhile
            return False
        return info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event(seq: int) -> bytes:
    return json.dumps(
        {"ts": int(time.time() * 1000), "seq": seq, "event": "door_opened", "method": "card"}
    ).encode()


def stored_events(db: Path) -> set[int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT j.seq FROM journal j JOIN devices d ON d.id = j.device_id"
            " WHERE d.device = 'b3-entrance' AND j.kind = 1"
        ).fetchall()
    finally:
        conn.close()
    return {int(seq) for (seq,) in rows}


def missing_events(db: Path, expected: set[int], timeout: float = 20.0) -> set[int]:
    """The expected events not stored once all are, or once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while (left := expected - stored_events(db)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def metric(gw: GatewayProcess, name: str) -> float:
    for line in gw.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture
def gateway(
    generated_broker: Broker,
    gateway_factory: Callable[..., GatewayProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> GatewayProcess:
    return start_gateway(generated_broker, REGISTRY, gateway_factory, monkeypatch)


def test_a_device_password_cannot_take_the_gateway_session(
    generated_broker: Broker, gateway: GatewayProcess
) -> None:
    creds = generated_broker.creds
    entrance = Device(generated_broker.port, "b3-entrance", creds["b3-entrance"])
    attackers: list[Device] = []
    try:
        # the gate's password, the gateway's client id, resuming the session it finds there
        attackers.append(
            Device(
                generated_broker.port,
                "gate-north",
                creds["gate-north"],
                client_id=GATEWAY_CLIENT_ID,
                clean_start=False,
            )
        )
        acked = []
        for seq in range(40):  # over two seconds, while the two connections would take turns
            if entrance.publish(f"{ENTRANCE}/event", event(seq)):
                acked.append(seq)
            time.sleep(0.05)
        assert len(acked) == 40
        assert missing_events(gateway.db, set(acked)) == set()
        assert attackers[0].received == []
        assert metric(gateway, "courtyard_mqtt_connected") == 1
        # the gateway was never kicked off its session
        assert metric(gateway, "courtyard_mqtt_reconnects_total") == 0

        # While the gateway is away, its session queues; a clean start under its client id
        # or its account's name would erase that queue.
        gateway.stop()
        for client_id in (GATEWAY_CLIENT_ID, "courtyard"):
            attacker = Device(
                generated_broker.port, "gate-north", creds["gate-north"], client_id=client_id
            )
            attacker.close()
        queued = [seq for seq in range(40, 60) if entrance.publish(f"{ENTRANCE}/event", event(seq))]
        assert len(queued) == 20
        gateway.start()
        assert missing_events(gateway.db, set(range(60))) == set()
    finally:
        for device in (entrance, *attackers):
            device.close()
    # the broker saw the gate's account under its own name only
    log = generated_broker.log.read_text(errors="replace")
    assert f"as {GATEWAY_CLIENT_ID} " not in log
    assert "u'gate-north'" in log and "as gate-north (" in log


def test_the_broker_refuses_an_oversized_packet_from_a_device(
    generated_broker: Broker, gateway: GatewayProcess
) -> None:
    creds = generated_broker.creds
    meter = Device(generated_broker.port, "m-1", creds["m-1"])
    try:
        # never acknowledged: the broker disconnects the device instead of storing it
        assert not meter.publish(f"{METER}/telemetry", b"x" * (1024 * 1024), timeout=3)
        assert meter.disconnects >= 1
    finally:
        meter.close()
    entrance = Device(generated_broker.port, "b3-entrance", creds["b3-entrance"])
    try:
        assert entrance.publish(f"{ENTRANCE}/event", event(1))
        assert missing_events(gateway.db, {1}) == set()
    finally:
        entrance.close()
    assert metric(gateway, "courtyard_mqtt_received_bytes_total") < 10_000
    assert metric(gateway, "courtyard_mqtt_reconnects_total") == 0
    conn = sqlite3.connect(gateway.db)
    try:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    finally:
        conn.close()


def test_the_simulated_community_runs_on_its_own_accounts(
    tmp_path: Path,
    gateway_factory: Callable[..., GatewayProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def small(port: int = 1883, credentials: dict[str, str] | None = None) -> Community:
        return Community(
            "127.0.0.1",
            port,
            gates=1,
            entrances=1,
            spaces=2,
            barriers=1,
            meters=3,
            lockers=1,
            credentials=credentials,
        )

    registry = small().registry_toml()
    with broker_from_generated_files(tmp_path, registry) as broker:
        gw = start_gateway(broker, registry, gateway_factory, monkeypatch)
        creds = load_credentials(tmp_path / "broker-auth" / "credentials.toml")
        community = small(broker.port, creds)
        try:
            assert community.start(wait_s=15), "every device logged in with its own account"
            wait_for(
                lambda: all(d["online"] for d in gw.get("/api/v1/devices").json()["devices"]),
                20,
                "every device online at the gateway",
            )
            # a command goes out on the gateway's account and the door acks on its own
            r = httpx.post(
                f"{gw.api}/api/v1/devices/gate-north/commands",
                headers={"Authorization": f"Bearer {gw.key}"},
                json={"action": "unlock", "args": {"seconds": 1}},
                timeout=15,
            )
            assert r.status_code == 200, r.text
        finally:
            community.stop()
        assert metric(gw, "courtyard_mqtt_reconnects_total") == 0
