"""Every malformed input the decoder refuses, each with its reason code."""

from __future__ import annotations

import time

import pytest

from devices import REASONS, Rejected, decode
from devices.topics import Topic

NOW = 1_763_700_000_000
DAY = 24 * 3600 * 1000

CASES: list[tuple[str, str, bytes, str]] = [
    # class, message, payload, reason
    ("elevator", "telemetry", b'{"x_w": 1}', "unknown_class"),
    ("", "telemetry", b'{"x_w": 1}', "unknown_class"),
    ("access", "cmd", b'{"id": "a"}', "unexpected_message"),
    ("access", "config", b"{}", "unexpected_message"),
    ("meter", "telemetry", b"", "empty"),
    (
        "meter",
        "telemetry",
        ("{" + ",".join(f'"f{i}_w": 1' for i in range(70)) + "}").encode(),
        "too_many_fields",
    ),
    ("meter", "telemetry", b"  \n\t ", "empty"),
    ("meter", "telemetry", b'{"power_w": \xff}', "not_utf8"),
    ("meter", "telemetry", b"\xed\xa0\x80", "not_utf8"),
    ("meter", "telemetry", b"{power_w: 1}", "not_json"),
    ("meter", "telemetry", b'{"power_w": 1,}', "not_json"),
    ("meter", "telemetry", b'{"power_w": 1} x', "not_json"),
    ("meter", "telemetry", b'\xef\xbb\xbf{"power_w": 1}', "not_json"),
    ("meter", "telemetry", b'{"a": "\\ud800"}', "not_json"),
    ("meter", "telemetry", b'{"power_w": NaN}', "non_finite"),
    ("meter", "telemetry", b'{"power_w": Infinity}', "non_finite"),
    ("meter", "telemetry", b'{"power_w": -Infinity}', "non_finite"),
    ("meter", "telemetry", b'{"power_w": 1e999}', "non_finite"),
    ("meter", "telemetry", b'{"power_w": -1e400}', "non_finite"),
    ("meter", "telemetry", b'{"n": 1' + b"0" * 400 + b"}", "non_finite"),
    ("meter", "event", b'{"event": "tamper", "x": [NaN]}', "non_finite"),
    ("meter", "telemetry", b'{"power_w": 1' + b"0" * 250 + b"e60}", "non_finite"),
    ("meter", "telemetry", b'{"power_w": 1e0099,}', "not_json"),
    ("meter", "telemetry", b'{"note": "NaN", "power_w": 1,}', "not_json"),
    ("meter", "telemetry", b'{"power_w": 1, "note": "' + b'\\"' * 50, "not_json"),
    ("meter", "telemetry", b'{"power_w": 1, "x": ' + b"[" * 8 + b"]" * 8 + b"}", "too_deep"),
    ("meter", "telemetry", b"[" * 2000 + b"]" * 2000, "too_deep"),
    ("meter", "telemetry", b"{" * 20, "too_deep"),
    ("meter", "telemetry", b"[1, 2]", "not_object"),
    ("meter", "telemetry", b'"power_w"', "not_object"),
    ("meter", "telemetry", b"42", "not_object"),
    ("meter", "telemetry", b"null", "not_object"),
    ("meter", "event", b'["tamper"]', "not_object"),
    ("meter", "ack", b"true", "not_object"),
    ("access", "status", b"maybe", "bad_status"),
    ("access", "status", b"ONLINE", "bad_status"),
    ("access", "status", b'{"state": "sleeping"}', "bad_status"),
    ("access", "status", b'{"status": "online"}', "bad_status"),
    ("access", "status", b'{"state": true}', "bad_status"),
    ("access", "status", b'"away"', "bad_status"),
    ("access", "status", b"[1]", "bad_status"),
    ("access", "status", b'{"state": NaN}', "bad_status"),
    ("meter", "telemetry", b'{"ts": true, "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"ts": 1763700000000.5, "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"ts": "2025-11-21T10:00:00", "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"ts": "2025-11-21", "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"ts": "yesterday", "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"ts": [1], "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"ts": "' + b"2" * 100 + b'", "power_w": 1}', "bad_ts"),
    ("meter", "telemetry", b'{"seq": -1, "power_w": 1}', "bad_seq"),
    ("meter", "telemetry", b'{"seq": 1.5, "power_w": 1}', "bad_seq"),
    ("meter", "telemetry", b'{"seq": true, "power_w": 1}', "bad_seq"),
    ("meter", "telemetry", b'{"seq": "7", "power_w": 1}', "bad_seq"),
    ("meter", "telemetry", b'{"seq": 18446744073709551615, "power_w": 1}', "bad_seq"),
    ("meter", "telemetry", b'{"Power_W": 1}', "bad_field_name"),
    ("meter", "telemetry", b'{"1x": 1}', "bad_field_name"),
    ("meter", "telemetry", b'{"power-w": true}', "bad_field_name"),
    ("meter", "telemetry", b'{"' + b"a" * 65 + b'": 1}', "bad_field_name"),
    ("access", "telemetry", b'{"door_open": "yes"}', "bad_field_type"),
    ("access", "telemetry", b'{"door_open": 1}', "bad_field_type"),
    ("access", "telemetry", b'{"battery_pct": null}', "bad_field_type"),
    ("meter", "telemetry", b'{"power_w": true}', "bad_field_type"),
    ("meter", "telemetry", b'{"energy_kwh": "12.5"}', "bad_field_type"),
    ("meter", "telemetry", b'{"voltage_v": [230]}', "bad_field_type"),
    ("meter", "telemetry", b"{}", "no_readings"),
    ("meter", "telemetry", b'{"ts": 1763700000000, "seq": 1}', "no_readings"),
    ("meter", "telemetry", b'{"note": "hi", "extra": {"a": 1}, "x": null}', "no_readings"),
    ("access", "event", b'{"ts": 1763700000000}', "missing_event"),
    ("access", "event", b'{"event": 5}', "missing_event"),
    ("access", "event", b'{"event": null}', "missing_event"),
    ("access", "event", b'{"event": "vehicle_entered"}', "unknown_event"),
    ("meter", "event", b'{"event": "door_forced"}', "unknown_event"),
    ("access", "event", b'{"event": "Door_Opened"}', "unknown_event"),
    ("access", "event", b'{"event": "door_held_open", "seconds": "long"}', "bad_attribute"),
    ("parking", "event", b'{"event": "vehicle_entered", "confidence": 101}', "bad_attribute"),
    ("access", "event", b'{"event": "door_held_open", "seconds": -3}', "bad_attribute"),
    ("access", "event", b'{"event": "door_opened", "method": "telepathy"}', "bad_attribute"),
    ("access", "event", b'{"event": "access_denied", "credential": 1234}', "bad_attribute"),
    ("parking", "event", b'{"event": "vehicle_entered", "confidence": "high"}', "bad_attribute"),
    ("parking", "event", b'{"event": "vehicle_exited", "plate": 7}', "bad_attribute"),
    ("locker", "event", b'{"event": "parcel_deposited", "parcel_id": "p1"}', "bad_attribute"),
    ("locker", "event", b'{"event": "compartment_jammed", "compartment": true}', "bad_attribute"),
    ("locker", "event", b'{"event": "compartment_jammed", "compartment": ""}', "bad_attribute"),
    ("locker", "event", b'{"event": "compartment_jammed", "compartment": 1.5}', "bad_attribute"),
    ("access", "ack", b'{"ok": true}', "bad_ack"),
    ("access", "ack", b'{"id": "", "ok": true}', "bad_ack"),
    ("access", "ack", b'{"id": 7, "ok": true}', "bad_ack"),
    ("access", "ack", b'{"id": "c1"}', "bad_ack"),
    ("access", "ack", b'{"id": "c1", "ok": "true"}', "bad_ack"),
    ("access", "ack", b'{"id": "c1", "ok": 1}', "bad_ack"),
    ("access", "ack", b'{"id": "c1", "ok": false, "error": 3}', "bad_ack"),
    ("access", "ack", b'{"id": "c1", "ok": true, "ts": false}', "bad_ts"),
]


@pytest.mark.parametrize(("device_class", "message", "payload", "reason"), CASES)
def test_rejects_with_reason(device_class: str, message: str, payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        decode(Topic("c1", device_class, "dev-1", message), payload, NOW)
    assert caught.value.reason == reason
    assert reason in REASONS


def test_every_reason_is_exercised() -> None:
    assert {case[3] for case in CASES} | {"too_large"} == set(REASONS)


def test_too_large_is_checked_before_parsing() -> None:
    payload = b"\xff" * 101
    with pytest.raises(Rejected) as caught:
        decode(Topic("c1", "meter", "m1", "telemetry"), payload, NOW, max_bytes=100)
    assert caught.value.reason == "too_large"


def test_default_limit_is_64_kib() -> None:
    padding = b" " * (65536 - len(b'{"power_w": 1}'))
    assert decode(Topic("c1", "meter", "m1", "telemetry"), b'{"power_w": 1}' + padding, NOW).fields
    with pytest.raises(Rejected) as caught:
        decode(Topic("c1", "meter", "m1", "telemetry"), b'{"power_w": 1}' + padding + b" ", NOW)
    assert caught.value.reason == "too_large"


def test_depth_eight_is_accepted_nine_is_not() -> None:
    eight = b'{"power_w": 1, "x": ' + b"[" * 7 + b"]" * 7 + b"}"
    assert decode(Topic("c1", "meter", "m1", "telemetry"), eight, NOW).fields == {"power_w": 1.0}
    with pytest.raises(Rejected, match="too_deep"):
        decode(
            Topic("c1", "meter", "m1", "telemetry"),
            eight.replace(b"[", b"[[", 1).replace(b"]", b"]]", 1),
            NOW,
        )


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    payload = b'{"power_w": 1, "note": "' + b"[{" * 50 + b'"}'
    assert decode(Topic("c1", "meter", "m1", "telemetry"), payload, NOW).fields == {"power_w": 1.0}


def test_rejected_detail_names_the_field() -> None:
    with pytest.raises(Rejected) as caught:
        decode(
            Topic("c1", "access", "gate", "telemetry"), b'{"locked": true, "door_open": "yes"}', NOW
        )
    assert "door_open" in caught.value.detail


def test_non_bytes_payload_is_rejected_not_crashing() -> None:
    with pytest.raises(Rejected):
        decode(Topic("c1", "meter", "m1", "telemetry"), "not bytes", NOW)  # type: ignore[arg-type]
    buffer = bytearray(b'{"power_w": 2}')
    assert decode(Topic("c1", "meter", "m1", "telemetry"), buffer, NOW).fields  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        b'["' + b'\\"' * 32000,
        b'"' * 65536,
        b"[" * 65536,
        b"[[[[[[[[]]]]]]]]" * 4096,
        b"[" + b"1e100," * 10900,
        b"[" + b"1," * 32000 + b"NaN",
    ],
)
def test_large_hostile_payloads_are_classified_quickly(payload: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(Rejected):
        decode(Topic("c1", "meter", "m1", "telemetry"), payload[:65536], NOW)
    assert time.perf_counter() - started < 0.25
