"""The gateway's broker session against a device's password, on a real Mosquitto started with
the files `courtyard broker-config` writes (nothing added but persistence and a log).

A device account used to be able to connect with the gateway's client id: Mosquitto handed it
the gateway's persistent session, dropped every other device's messages against the device's
read ACL after acknowledging them, and the two connections kept kicking each other. A clean
start with that id, while the gateway was away, erased everything queued for it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from firmware_stubs.community import Community, load_credentials
from tests.support.broker import REGISTRY, Device, broker_from_generated_files
from tests.support.broker import GeneratedBroker as Broker
from tests.support.servers import GatewayProcess
from tests.support.wait import wait_for

ENTRANCE = "community/c1/access/b3-entrance"
METER = "community/c1/meter/m-1"
GATEWAY_CLIENT_ID = "courtyard-test"  # what GatewayProcess configures as [mqtt] client_id


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
