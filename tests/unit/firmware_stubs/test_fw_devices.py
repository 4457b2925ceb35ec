"""Simulated devices without a broker: command handling, acks, events, seq numbering."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from firmware_stubs.door import DoorController
from firmware_stubs.locker import LockerBank
from firmware_stubs.meter import ElectricityMeter, WaterMeter
from firmware_stubs.parking import BarrierGate, random_plate
from firmware_stubs.signing import signed

SECRET = "ab" * 32
NOW = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


class Recorder:
    """Stands in for the MQTT client's publish: records (topic, decoded payload)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def __call__(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            body = payload
        self.sent.append((topic.rsplit("/", 1)[1], body))

    def of(self, kind: str) -> list[Any]:
        return [body for k, body in self.sent if k == kind]


def make(cls: type, device_id: str, **kwargs: Any) -> tuple[Any, Recorder, Clock]:
    clock = Clock()
    device = cls(device_id, secret=SECRET, clock=clock, **kwargs)
    device.boot_ms = NOW - 1_000
    recorder = Recorder()
    device.client.publish = recorder  # type: ignore[method-assign]
    return device, recorder, clock


def cmd(device: str, action: str, args: dict[str, Any], cmd_id: str = "c-1", **extra: Any) -> bytes:
    body = {
        **extra,
        "id": cmd_id,
        "device": device,
        "action": action,
        "args": args,
        "issued_at": NOW,
        "expires_at": NOW + 10_000,
    }
    return json.dumps(signed(body, SECRET)).encode()


def test_unlock_acks_first_then_opens() -> None:
    door, rec, _ = make(DoorController, "gate-north")
    assert door.handle_command(cmd("gate-north", "unlock", {"seconds": 3})) is None
    kinds = [k for k, _ in rec.sent]
    assert kinds[0] == "ack"
    assert rec.of("ack") == [{"id": "c-1", "ok": True, "ts": NOW}]
    assert rec.of("event")[0]["event"] == "door_opened"
    assert rec.of("event")[0]["method"] == "remote"
    assert door.door_open and not door.locked


def test_replay_is_refused_with_a_tamper_event() -> None:
    door, rec, _ = make(DoorController, "gate-north")
    raw = cmd("gate-north", "unlock", {})
    assert door.handle_command(raw) is None
    assert door.handle_command(raw) == "replayed"
    assert rec.of("ack")[-1] == {"id": "c-1", "ok": False, "error": "replayed", "ts": NOW}
    tamper = [e for e in rec.of("event") if e["event"] == "tamper"]
    assert tamper == [
        {
            "ts": NOW,
            "seq": tamper[0]["seq"],
            "event": "tamper",
            "reason": "replayed",
            "command_id": "c-1",
        }
    ]


def test_ids_are_forgotten_once_expired() -> None:
    door, _, clock = make(DoorController, "gate-north")
    raw = cmd("gate-north", "unlock", {})
    assert door.handle_command(raw) is None
    clock.now = NOW + 10_000 + 30_001
    assert door.handle_command(raw) == "expired"
    assert door._seen_ids == {}


def test_a_rule_2_command_that_arrives_after_expiry_is_refused_and_opens_nothing() -> None:
    # the command waited (a stalled process, a full socket) until just past its expires_at
    door, rec, clock = make(DoorController, "gate-north")
    clock.now = NOW + 10_001
    assert door.handle_command(cmd("gate-north", "unlock", {}, rule=2)) == "expired"
    assert rec.of("ack") == [{"id": "c-1", "ok": False, "error": "expired", "ts": NOW + 10_001}]
    assert not door.door_open and rec.of("event") == []


def test_firmware_before_rule_2_still_opens_within_the_skew_after_expiry() -> None:
    door, rec, clock = make(DoorController, "gate-north", command_rule=1)
    clock.now = NOW + 10_001
    assert door.handle_command(cmd("gate-north", "unlock", {}, rule=2)) is None
    assert door.door_open and rec.of("ack")[0]["ok"] is True


def test_bad_signature_raises_tamper_and_garbage_is_a_bad_signature() -> None:
    door, rec, _ = make(DoorController, "gate-north")
    forged = json.loads(cmd("gate-north", "unlock", {}))
    forged["args"] = {"seconds": 30}
    assert door.handle_command(json.dumps(forged).encode()) == "bad_signature"
    assert door.handle_command(b"\xff not json") == "bad_signature"
    assert door.handle_command(b'{"id": NaN}') == "bad_signature"
    assert [a["error"] for a in rec.of("ack")] == ["bad_signature"] * 3
    assert rec.of("ack")[0]["id"] == "c-1"
    assert rec.of("ack")[1]["id"] is None
    assert [e["reason"] for e in rec.of("event") if e["event"] == "tamper"] == ["bad_signature"] * 3
    assert not door.door_open


def test_wrong_device_and_unknown_action_raise_no_tamper() -> None:
    door, rec, _ = make(DoorController, "gate-north")
    assert door.handle_command(cmd("gate-south", "unlock", {})) == "wrong_device"
    assert door.handle_command(cmd("gate-north", "open_barrier", {}, "c-2")) == "unknown_action"
    assert [a["error"] for a in rec.of("ack")] == ["wrong_device", "unknown_action"]
    assert rec.of("event") == []
    # An action it refused is not remembered: the same id with a valid action still works.
    assert door.handle_command(cmd("gate-north", "unlock", {}, "c-2")) is None


def test_issued_before_boot_is_expired() -> None:
    door, _, _ = make(DoorController, "gate-north")
    door.boot_ms = NOW + 1
    assert door.handle_command(cmd("gate-north", "unlock", {})) == "expired"


@pytest.mark.parametrize("seconds", [None, "5", True, -3, 0, 1_000])
def test_unlock_seconds_fall_back_or_clamp(seconds: Any) -> None:
    door, rec, _ = make(DoorController, "gate-north")
    assert door.handle_command(cmd("gate-north", "unlock", {"seconds": seconds})) is None
    assert rec.of("ack")[0]["ok"] is True


def test_seq_increases_across_telemetry_and_events() -> None:
    door, rec, _ = make(DoorController, "b1-entrance", building="b1", units=["b1-0101"])
    door.publish_telemetry()
    door.intercom_call()
    door.force_door()
    door.tamper()
    seqs = [body["seq"] for kind, body in rec.sent if kind in ("telemetry", "event")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] == 1
    assert rec.of("telemetry")[0] == {
        "ts": NOW,
        "seq": 1,
        "door_open": False,
        "locked": True,
        "battery_pct": door.battery_pct,
    }
    events = [e["event"] for e in rec.of("event")]
    assert events == ["intercom_call", "door_forced", "tamper"]


def test_silent_device_publishes_and_answers_nothing() -> None:
    door, rec, _ = make(DoorController, "gate-north")
    door.go_silent()
    door.publish_telemetry()
    door.emit_event("tamper")
    assert door.handle_command(cmd("gate-north", "unlock", {})) is None
    assert rec.sent == []
    door.resume()
    assert [k for k, _ in rec.sent] == ["telemetry"]


def test_garbage_is_not_json() -> None:
    door, rec, _ = make(DoorController, "gate-north")
    door.send_garbage()
    kind, body = rec.sent[0]
    assert kind == "telemetry" and isinstance(body, bytes)


def test_locker_open_compartment() -> None:
    locker, rec, _ = make(LockerBank, "locker-1", compartments=4, units=["b2-0301"])
    compartment = locker.deposit()
    assert compartment is not None
    deposited = rec.of("event")[0]
    assert deposited["event"] == "parcel_deposited" and deposited["unit"] == "b2-0301"
    assert rec.of("telemetry")[-1]["free_compartments"] == 3
    args = {"compartment": compartment}
    assert locker.handle_command(cmd("locker-1", "open_compartment", args)) is None
    assert rec.of("event")[-1] == {
        "ts": NOW,
        "seq": rec.of("event")[-1]["seq"],
        "event": "parcel_picked_up",
        "compartment": compartment,
        "parcel_id": deposited["parcel_id"],
    }
    assert rec.of("telemetry")[-1] == {
        "ts": NOW,
        "seq": rec.of("telemetry")[-1]["seq"],
        "free_compartments": 4,
        "total_compartments": 4,
    }
    bad = {"compartment": 5}
    assert locker.handle_command(cmd("locker-1", "open_compartment", bad, "c-2")) == "bad_args"
    locker.jam(2)
    jam = {"compartment": 2}
    assert locker.handle_command(cmd("locker-1", "open_compartment", jam, "c-3")) == (
        "compartment_jammed"
    )


def test_barrier_open_and_vehicles() -> None:
    barrier, rec, _ = make(BarrierGate, "barrier-1")
    assert barrier.handle_command(cmd("barrier-1", "open_barrier", {"lane": "out"})) is None
    assert barrier.open_lanes == {"out"}
    assert barrier.handle_command(cmd("barrier-1", "open_barrier", {"lane": "x"}, "c-2")) == (
        "bad_args"
    )
    barrier.vehicle_entered("沪A12345")
    entered = rec.of("event")[-1]
    assert entered["event"] == "vehicle_entered" and entered["plate"] == "沪A12345"
    assert entered["lane"] == "in" and 0.7 < entered["confidence"] <= 1.0


def test_plates_look_real() -> None:
    rng = random.Random(1)
    pattern = re.compile(r"^[\u4e00-\u9fff][A-HJ-NP-Z]([A-HJ-NP-Z0-9]{5}|[DF]\d{5})$")
    for _ in range(500):
        assert pattern.match(random_plate(rng))


def test_meters_count_up() -> None:
    meter, rec, _ = make(ElectricityMeter, "m-b1-0101", unit="b1-0101", rate_scale=3600.0)
    water, wrec, _ = make(WaterMeter, "w-b1-0101", unit="b1-0101")
    energies = []
    for step in range(5):
        meter._advance(meter._last_advance + 1.0 + step)  # an hour of simulated time each
        energies.append(meter.energy_kwh)
        assert 220.0 < meter.voltage_v < 240.0
        assert meter.current_a == pytest.approx(meter.power_w / (meter.voltage_v * 0.95))
    assert energies == sorted(energies) and energies[-1] > energies[0]
    meter.publish_telemetry()
    assert set(rec.of("telemetry")[0]) == {
        "ts",
        "seq",
        "energy_kwh",
        "power_w",
        "voltage_v",
        "current_a",
    }
    water.publish_telemetry()
    assert set(wrec.of("telemetry")[0]) == {"ts", "seq", "volume_m3", "flow_m3h", "battery_pct"}
