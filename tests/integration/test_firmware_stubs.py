"""The simulated firmware against a real Mosquitto started by this module on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_stubs.community import Community
from firmware_stubs.device import now_ms
from firmware_stubs.door import DoorController
from firmware_stubs.flood import flood
from firmware_stubs.signing import signed
from tests.support.servers import Mosquitto

pytestmark = pytest.mark.integration  # a missing mosquitto fails the broker fixture loudly

REPO = Path(__file__).resolve().parents[2]
SECRET = "5e" * 32


# -- a private broker -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


# -- a subscriber that records --------------------------------------------------------------------


class Sub:
    def __init__(self, port: int, *topics: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.cv = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:10]}"
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(t, 1) for t in topics])
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cv:
            self.messages.append(msg)
            self.cv.notify_all()

    def wait_for(
        self, predicate: Callable[[list[mqtt.MQTTMessage]], Any], timeout: float = 5.0
    ) -> Any:
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                result = predicate(self.messages)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return result
                self.cv.wait(remaining)

    def snapshot(self) -> list[mqtt.MQTTMessage]:
        with self.cv:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subs() -> Iterator[Callable[..., Sub]]:
    made: list[Sub] = []

    def make(port: int, *topics: str) -> Sub:
        s = Sub(port, *topics)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def body(msg: mqtt.MQTTMessage) -> Any:
    return json.loads(msg.payload)


def matching(suffix: str, pred: Callable[[Any], bool] = lambda b: True) -> Callable[..., list]:
    def find(msgs: list[mqtt.MQTTMessage]) -> list[mqtt.MQTTMessage]:
        return [m for m in msgs if m.topic.endswith(suffix) and pred(body(m))]

    return find


# -- a small community ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def community(broker: Mosquitto) -> Iterator[Community]:
    c = Community(
        "127.0.0.1",
        broker.port,
        gates=1,
        entrances=1,
        spaces=3,
        meters=3,
        lockers=1,
        rate_scale=30.0,
        secret_seed="integration",
    )
    assert c.start(wait_s=10.0)
    try:
        yield c
    finally:
        c.stop()


def test_retained_online_status(community: Community, subs: Callable[..., Sub]) -> None:
    s = subs(community.port, "community/c1/+/+/status")
    want = len(community.devices)
    msgs = s.wait_for(lambda ms: len(ms) >= want and ms)
    by_device = {m.topic.split("/")[3]: m for m in msgs}
    assert set(by_device) == set(community.devices)
    for device_id, m in by_device.items():
        device = community.devices[device_id]
        assert m.topic == f"community/c1/{device.device_class}/{device_id}/status"
        assert m.retain
        assert body(m) == {"state": "online"}


def test_telemetry_and_events_have_increasing_seq(
    community: Community, subs: Callable[..., Sub]
) -> None:
    s = subs(community.port, "community/c1/+/+/telemetry", "community/c1/+/+/event")
    slowest = max(d.expect_every_s for d in community.devices.values())
    time.sleep(2 * slowest + 0.5)
    msgs = s.snapshot()
    seqs: dict[str, list[int]] = defaultdict(list)
    now = now_ms()
    for m in msgs:
        b = body(m)
        assert isinstance(b["ts"], int) and now - 10_000 < b["ts"] <= now + 1_000
        seqs[m.topic.split("/")[3]].append(b["seq"])
    assert set(seqs) == set(community.devices)  # everyone reported within two heartbeats
    for device_id, values in seqs.items():
        assert values == sorted(values), device_id
        assert len(set(values)) == len(values), device_id
    telemetry = [body(m) for m in msgs if m.topic == "community/c1/meter/m-b1-0101/telemetry"]
    assert {"energy_kwh", "power_w", "voltage_v", "current_a"} <= set(telemetry[-1])
    assert 215 < telemetry[-1]["voltage_v"] < 245


def test_last_will_on_abrupt_disconnect(community: Community, subs: Callable[..., Sub]) -> None:
    device = community.devices["w-b1-0101"]
    s = subs(community.port, device.topic("status"))
    assert s.wait_for(matching("/status", lambda b: b == {"state": "online"}))
    device.disconnect_abruptly(reconnect=False)
    try:
        assert s.wait_for(matching("/status", lambda b: b == {"state": "offline"}))
        later = subs(community.port, device.topic("status"))
        retained = later.wait_for(matching("/status"))
        assert retained[0].retain and body(retained[0]) == {"state": "offline"}
    finally:
        device.reconnect()
    assert device.wait_connected(10)
    assert s.wait_for(lambda ms: [body(m) for m in ms][-1] == {"state": "online"})


def test_abrupt_disconnect_reconnects_by_itself(
    community: Community, subs: Callable[..., Sub]
) -> None:
    device = community.devices["g-b1-0101"]
    s = subs(community.port, device.topic("status"))
    assert s.wait_for(matching("/status"))
    device.disconnect_abruptly()
    states = s.wait_for(
        lambda ms: [body(m)["state"] for m in ms][-2:] == ["offline", "online"], timeout=10
    )
    assert states
    assert device.connected


def _unlock(secret: str, device_id: str, seconds: int = 1) -> dict[str, Any]:
    issued = now_ms()
    return signed(
        {
            "id": str(uuid.uuid4()),
            "device": device_id,
            "action": "unlock",
            "args": {"seconds": seconds},
            "issued_at": issued,
            "expires_at": issued + 10_000,
        },
        secret,
    )


@pytest.fixture
def quiet_door(broker: Mosquitto) -> Iterator[DoorController]:
    """A door controller with no random life of its own, so every event is ours."""
    door = DoorController(
        "door-quiet",
        port=broker.port,
        secret=SECRET,
        mean_access_s=1e9,
        mean_exit_s=1e9,
        mean_intercom_s=1e9,
    )
    door.start()
    assert door.wait_connected(10)
    try:
        yield door
    finally:
        door.stop()


def test_signed_unlock_then_replay(quiet_door: DoorController, subs: Callable[..., Sub]) -> None:
    door = quiet_door
    s = subs(door.port, door.topic("ack"), door.topic("event"))
    cmd = _unlock(SECRET, door.device_id, seconds=1)
    raw = json.dumps(cmd).encode()
    sent = time.monotonic()
    s.client.publish(door.topic("cmd"), raw, qos=1)
    acks = s.wait_for(matching("/ack", lambda b: b["id"] == cmd["id"]))
    acked_after = time.monotonic() - sent
    assert body(acks[0])["ok"] is True and "error" not in body(acks[0])
    assert acked_after < 1.0
    events = s.wait_for(
        lambda ms: (
            [body(m) for m in ms if m.topic.endswith("/event")]
            if len([m for m in ms if m.topic.endswith("/event")]) >= 2
            else []
        ),
        timeout=5,
    )
    assert [e["event"] for e in events] == ["door_opened", "door_closed"]
    assert events[0]["method"] == "remote"
    assert 900 <= events[1]["ts"] - events[0]["ts"] <= 2_000  # args.seconds = 1

    s.client.publish(door.topic("cmd"), raw, qos=1)
    refused = s.wait_for(matching("/ack", lambda b: b["id"] == cmd["id"] and not b["ok"]))
    assert body(refused[0])["error"] == "replayed"
    tamper = s.wait_for(
        matching("/event", lambda b: b["event"] == "tamper" and b.get("reason") == "replayed")
    )
    assert tamper
    assert not door.door_open


def test_forged_and_misaddressed_commands(community: Community, subs: Callable[..., Sub]) -> None:
    door = community.devices["b1-entrance"]
    s = subs(community.port, door.topic("ack"), door.topic("event"))
    forged = _unlock(community.secret("b1-entrance"), "b1-entrance")
    forged["args"] = {"seconds": 30}
    s.client.publish(door.topic("cmd"), json.dumps(forged), qos=1)
    ack = s.wait_for(matching("/ack", lambda b: b["id"] == forged["id"]))
    assert body(ack[0]) | {"ts": 0} == {
        "id": forged["id"],
        "ok": False,
        "error": "bad_signature",
        "ts": 0,
    }
    assert s.wait_for(matching("/event", lambda b: b.get("reason") == "bad_signature"))

    other = _unlock(community.secret("b1-entrance"), "b1-entrance")
    other["device"] = "gate-north"
    other = signed(other, community.secret("b1-entrance"))
    s.client.publish(door.topic("cmd"), json.dumps(other), qos=1)
    ack = s.wait_for(matching("/ack", lambda b: b["id"] == other["id"]))
    assert body(ack[0])["error"] == "wrong_device"


def test_go_silent_keeps_the_connection(community: Community, subs: Callable[..., Sub]) -> None:
    device = community.devices["m-b1-0101"]
    s = subs(community.port, f"community/c1/meter/{device.device_id}/#")
    device.go_silent()
    try:
        time.sleep(0.3)  # anything already in flight
        start = len(s.snapshot())
        time.sleep(2 * device.expect_every_s + 0.5)
        quiet = s.snapshot()[start:]
        assert [m.topic for m in quiet] == []
        assert device.connected
    finally:
        device.resume()
    assert s.wait_for(matching("/telemetry"))


def test_send_garbage(community: Community, subs: Callable[..., Sub]) -> None:
    device = community.devices["p-001"]
    s = subs(community.port, device.topic("telemetry"))
    device.send_garbage()

    def garbage(ms: list[mqtt.MQTTMessage]) -> list[mqtt.MQTTMessage]:
        out = []
        for m in ms:
            try:
                json.loads(m.payload)
            except ValueError:
                out.append(m)
        return out

    assert s.wait_for(garbage)


def test_locker_open_compartment(community: Community, subs: Callable[..., Sub]) -> None:
    locker = community.devices["locker-1"]
    s = subs(community.port, locker.topic("ack"))
    issued = now_ms()
    cmd = signed(
        {
            "id": "locker-cmd-1",
            "device": "locker-1",
            "action": "open_compartment",
            "args": {"compartment": 3},
            "issued_at": issued,
            "expires_at": issued + 10_000,
        },
        community.secret("locker-1"),
    )
    s.client.publish(locker.topic("cmd"), json.dumps(cmd), qos=1)
    ack = s.wait_for(matching("/ack", lambda b: b["id"] == "locker-cmd-1"))
    assert body(ack[0])["ok"] is True


@pytest.mark.parametrize("engine", ["paho", "raw"])
def test_flood_publishes_with_duplicates(
    broker: Mosquitto, subs: Callable[..., Sub], engine: str
) -> None:
    s = subs(broker.port, f"community/f{engine}/meter/+/telemetry")
    result = flood(
        "127.0.0.1",
        broker.port,
        devices=20,
        messages=2000,
        duplicate_ratio=0.1,
        community=f"f{engine}",
        engine=engine,
        inflight=100,
    )
    assert result["published"] == 2200
    assert result["unique"] == 2000
    assert result["acked"] == 2200
    assert result["rate"] > 0
    msgs = s.wait_for(lambda ms: len(ms) >= 2200 and ms, timeout=20)
    assert len(msgs) == 2200
    keys = [(m.topic, body(m)["ts"], body(m)["seq"]) for m in msgs]
    assert len(set(keys)) == 2000
    assert len({m.topic for m in msgs}) == 20
    now = now_ms()
    assert all(now - 300_000 < ts < now for _, ts, _ in keys)
    per_device: dict[str, set[int]] = defaultdict(set)
    for topic, _, seq in keys:
        per_device[topic].add(seq)
    assert all(seqs == set(range(100)) for seqs in per_device.values())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_cli_flood(broker: Mosquitto) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware_stubs",
            "flood",
            "--port",
            str(broker.port),
            "--devices",
            "10",
            "--messages",
            "500",
            "--duplicate-ratio",
            "0.2",
            "--community",
            "fcli",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=_env(),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["published"] == 600 and result["unique"] == 500 and result["acked"] == 600
    assert set(result) == {"published", "unique", "acked", "seconds", "rate"}


def test_cli_community_registry_and_clean_shutdown(
    broker: Mosquitto, subs: Callable[..., Sub], tmp_path: Path
) -> None:
    registry = tmp_path / "community.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_stubs",
            "community",
            "--port",
            str(broker.port),
            "--community",
            "cli",
            "--gates",
            "1",
            "--entrances",
            "2",
            "--spaces",
            "2",
            "--meters",
            "3",
            "--lockers",
            "1",
            "--rate-scale",
            "10",
            "--registry-out",
            str(registry),
            "--secret-seed",
            "cli-seed",
        ],
        cwd=REPO,
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not registry.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        data = tomllib.loads(registry.read_text(encoding="utf-8"))
        ids = {d["id"] for d in data["devices"]}
        assert {
            "gate-north",
            "b1-entrance",
            "b2-entrance",
            "p-001",
            "p-002",
            "barrier-1",
            "lot-1",
            "m-b1-0101",
            "w-b1-0101",
            "g-b1-0101",
            "locker-1",
        } == ids
        assert {b["id"] for b in data["buildings"]} == {"b1", "b2"}
        s = subs(broker.port, "community/cli/+/+/status")
        online = s.wait_for(
            lambda ms: {m.topic.split("/")[3] for m in ms if body(m)["state"] == "online"} >= ids,
            timeout=10,
        )
        assert online
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr
        assert "stopped" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    after = subs(broker.port, "community/cli/+/+/status")
    retained = after.wait_for(lambda ms: len(ms) >= len(ids) and ms)
    assert {m.topic.split("/")[3]: body(m)["state"] for m in retained} == dict.fromkeys(
        ids, "offline"
    )


def test_devices_reconnect_after_a_broker_restart(tmp_path: Path, subs: Callable[..., Sub]) -> None:
    b = Mosquitto(tmp_path)
    b.start()
    c = Community(
        "127.0.0.1",
        b.port,
        community="rc",
        gates=1,
        entrances=0,
        spaces=0,
        meters=0,
        lockers=0,
        barriers=0,
        rate_scale=30.0,
    )
    try:
        assert c.start(wait_s=10)
        door = c.devices["gate-north"]
        b.stop()
        deadline = time.monotonic() + 5
        while door.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not door.connected
        b.start()
        assert door.wait_connected(15)
        s = subs(b.port, door.topic("status"))
        assert s.wait_for(matching("/status", lambda x: x == {"state": "online"}))
    finally:
        c.stop()
        b.stop()
