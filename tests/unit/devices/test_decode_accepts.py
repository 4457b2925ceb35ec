"""What the decoder accepts, and how it normalizes it."""

from __future__ import annotations

import pytest

from devices import Decoded, Reading, decode, readings
from devices.decode import FUTURE_MS, PAST_MS
from devices.topics import Topic

NOW = 1_763_700_000_000


def test_meter_telemetry_fields_become_floats() -> None:
    payload = b'{"ts": 1763699990000, "seq": 7, "energy_kwh": 12, "power_w": 1520.5}'
    got = decode(Topic("c1", "meter", "m1", "telemetry"), payload, NOW)
    assert got == Decoded(
        "meter", "m1", "telemetry", 1763699990000, "", 7, {"energy_kwh": 12.0, "power_w": 1520.5}
    )
    assert type(got.fields["energy_kwh"]) is float


def test_booleans_stay_booleans() -> None:
    got = decode(
        Topic("c1", "access", "gate", "telemetry"), b'{"door_open": false, "locked": true}', NOW
    )
    assert got.fields == {"door_open": False, "locked": True}
    assert type(got.fields["locked"]) is bool


def test_unknown_numbers_and_bools_are_kept_other_values_ignored() -> None:
    payload = b'{"temp_c": 21, "alarm": true, "fw": "1.2", "cfg": {"a": 1}, "l": [1], "n": null}'
    got = decode(Topic("c1", "locker", "l1", "telemetry"), payload, NOW)
    assert got.fields == {"temp_c": 21.0, "alarm": True}


def test_readings_carry_units_declared_or_from_the_name() -> None:
    payload = b'{"energy_kwh": 1, "flow_m3h": 0.5, "tank_m3": 3, "uptime_s": 9, "x": 1, "ok": true}'
    got = decode(Topic("c1", "meter", "m1", "telemetry"), payload, NOW)
    units = {r.field: r.unit for r in readings(got)}
    assert units == {
        "energy_kwh": "kWh",
        "flow_m3h": "m3/h",
        "tank_m3": "m3",
        "uptime_s": "s",
        "x": "",
        "ok": "",
    }
    assert readings(got)[0] == Reading("m1", "energy_kwh", 1.0, "kWh", NOW)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (b'"2025-11-21T04:40:00Z"', 1763700000000),
        (b'"2025-11-21T12:40:00+08:00"', 1763700000000),
        (b'"2025-11-21T04:39:59.250+00:00"', 1763699999250),
        (b"1763699000000", 1763699000000),
    ],
)
def test_device_time_is_used_when_sane(ts: bytes, expected: int) -> None:
    got = decode(Topic("c1", "meter", "m1", "telemetry"), b'{"power_w": 1, "ts": ' + ts + b"}", NOW)
    assert (got.ts_ms, got.ts_flag) == (expected, "")


@pytest.mark.parametrize(
    ("ts", "flag"),
    [
        (None, "missing"),
        (b"null", "missing"),
        (str(NOW + FUTURE_MS + 1).encode(), "future"),
        (str(NOW - PAST_MS - 1).encode(), "past"),
        (b"0", "past"),
        (b"-5", "past"),
        (b'"2099-01-01T00:00:00+00:00"', "future"),
        (b'"0001-01-01T00:00:00+14:00"', "past"),
    ],
)
def test_receive_time_replaces_missing_or_implausible_time(ts: bytes | None, flag: str) -> None:
    body = b'{"power_w": 1}' if ts is None else b'{"power_w": 1, "ts": ' + ts + b"}"
    got = decode(Topic("c1", "meter", "m1", "telemetry"), body, NOW)
    assert (got.ts_ms, got.ts_flag) == (NOW, flag)


def test_time_limits_are_inclusive() -> None:
    for ts in (NOW + FUTURE_MS, NOW - PAST_MS):
        got = decode(Topic("c1", "meter", "m1", "telemetry"), b'{"power_w": 1, "ts": %d}' % ts, NOW)
        assert (got.ts_ms, got.ts_flag) == (ts, "")


@pytest.mark.parametrize(
    "payload",
    [b"online", b" online\n", b'"online"', b'{"state": "online"}', b'{"state": "online", "ip": 1}'],
)
def test_status_online_forms(payload: bytes) -> None:
    got = decode(Topic("c1", "access", "gate", "status"), payload, NOW)
    assert (got.kind, got.status, got.ts_ms, got.ts_flag) == ("status", "online", NOW, "missing")


def test_status_keeps_the_reason_it_gives() -> None:
    topic = Topic("c1", "meter", "bus-1", "status")
    got = decode(topic, b'{"state": "offline", "reason": "gateway_stopped"}', NOW)
    assert (got.status, got.attrs) == ("offline", {"reason": "gateway_stopped"})
    assert decode(topic, b'{"state": "offline", "reason": 7}', NOW).attrs == {}
    assert decode(topic, b"offline", NOW).attrs == {}


def test_status_offline_with_time() -> None:
    got = decode(
        Topic("c1", "parking", "p1", "status"), b'{"state": "offline", "ts": 1763699999000}', NOW
    )
    assert (got.status, got.ts_ms, got.ts_flag) == ("offline", 1763699999000, "")
    assert decode(Topic("c1", "parking", "p1", "status"), b"offline", NOW).status == "offline"


def test_event_keeps_known_and_extra_attributes() -> None:
    payload = b'{"ts": 1763699999000, "seq": 3, "event": "door_opened", "method": "card", "x": [1]}'
    got = decode(Topic("c1", "access", "gate", "event"), payload, NOW)
    assert (got.kind, got.event, got.seq) == ("event", "door_opened", 3)
    assert got.attrs == {"method": "card", "x": [1]}


@pytest.mark.parametrize(
    ("device_class", "payload"),
    [
        ("access", b'{"event": "door_held_open", "seconds": 61.5}'),
        ("access", b'{"event": "access_denied", "credential": "c-9", "method": "pin"}'),
        ("access", b'{"event": "intercom_call", "unit": "b3-1201"}'),
        (
            "parking",
            b'{"event": "vehicle_entered", "plate": "AB123", "lane": "in", "confidence": 1}',
        ),
        ("parking", b'{"event": "barrier_fault"}'),
        ("parking", b'{"event": "tamper", "reason": "bad_signature", "command_id": "c1"}'),
        ("meter", b'{"event": "leak_detected"}'),
        ("locker", b'{"event": "parcel_deposited", "compartment": "A3", "unit": "b3-1201"}'),
        ("locker", b'{"event": "compartment_left_open", "compartment": "A3"}'),
        ("locker", b'{"event": "parcel_picked_up", "compartment": 7, "parcel_id": "P1"}'),
        ("parking", b'{"event": "barrier_fault", "reason": "motor"}'),
        ("locker", b'{"event": "tamper", "reason": "replayed", "command_id": "c1"}'),
    ],
)
def test_valid_events(device_class: str, payload: bytes) -> None:
    assert decode(Topic("c1", device_class, "d1", "event"), payload, NOW).kind == "event"


def test_ack_forms() -> None:
    ok = decode(Topic("c1", "access", "gate", "ack"), b'{"id": "c1", "ok": true}', NOW)
    assert (ok.kind, ok.attrs, ok.ts_flag) == (
        "ack",
        {"id": "c1", "ok": True, "error": None},
        "missing",
    )
    failed = decode(
        Topic("c1", "locker", "l1", "ack"),
        b'{"id": "c2", "ok": false, "error": "expired", "ts": 1763699999000}',
        NOW,
    )
    assert failed.attrs == {"id": "c2", "ok": False, "error": "expired"}
    assert failed.ts_ms == 1763699999000


def test_decode_is_deterministic_and_does_not_share_state() -> None:
    a = decode(Topic("c1", "meter", "m1", "telemetry"), b'{"power_w": 1}', NOW)
    b = decode(Topic("c1", "meter", "m1", "telemetry"), b'{"power_w": 1}', NOW)
    assert a == b
    assert a.fields is not b.fields
