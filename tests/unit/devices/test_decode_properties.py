"""Property tests: no input makes the decoder raise anything but Rejected."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import PROFILES, REASONS, Decoded, Rejected, decode
from devices.model import MESSAGES
from devices.topics import Topic

NOW = 1_763_700_000_000
CLASSES = st.one_of(st.sampled_from([*PROFILES]), st.text(max_size=10))
MESSAGE = st.one_of(st.sampled_from(MESSAGES), st.text(max_size=10))
KEYS = st.one_of(
    st.sampled_from(["ts", "seq", "event", "state", "id", "ok", "error", "method", "seconds"]),
    st.sampled_from(sorted({f for p in PROFILES.values() for f in p.fields})),
    st.sampled_from(sorted({e for p in PROFILES.values() for e in p.events})),
    st.text(max_size=12),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["online", "offline", "door_opened", "tamper", "2025-11-21T04:40:00Z"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=30,
)
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(device_class: str, message: str, payload: bytes) -> Decoded | None:
    try:
        got = decode(Topic("c1", device_class, "d1", message), payload, NOW, max_bytes=4096)
    except Rejected as exc:
        assert exc.reason in REASONS
        return None
    assert isinstance(got, Decoded)
    assert got.device_class == device_class
    assert got.kind == message
    for value in got.fields.values():
        assert type(value) is bool or (type(value) is float and math.isfinite(value))
    return got


@FAST
@given(CLASSES, MESSAGE, st.binary(max_size=300))
def test_arbitrary_bytes(device_class: str, message: str, payload: bytes) -> None:
    _check(device_class, message, payload)


@FAST
@given(CLASSES, MESSAGE, JSONISH)
def test_arbitrary_json_values(device_class: str, message: str, value: Any) -> None:
    # The standard encoder writes NaN/Infinity tokens and big integers, as a sloppy device might.
    _check(device_class, message, json.dumps(value).encode())


@FAST
@given(CLASSES, MESSAGE, JSONISH, st.integers(min_value=0, max_value=12))
def test_arbitrary_json_values_nested(
    device_class: str, message: str, value: Any, depth: int
) -> None:
    text = json.dumps(value)
    _check(device_class, message, ("[" * depth + text + "]" * depth).encode())
    _check(device_class, message, ('{"a":' * depth + text + "}" * depth).encode())
    _check(device_class, message, (text + "]" * depth).encode())


@FAST
@given(CLASSES, MESSAGE, st.text(alphabet='{}[]",:0123456789.eE-+ NaInfityrulsto\\', max_size=80))
def test_json_like_text(device_class: str, message: str, text: str) -> None:
    _check(device_class, message, text.encode())


NUMBERS = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def telemetry(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    device_class = draw(st.sampled_from(sorted(PROFILES)))
    profile = PROFILES[device_class]
    body: dict[str, Any] = {}
    for name, spec in profile.fields.items():
        if draw(st.booleans()):
            body[name] = draw(st.booleans() if spec.type == "bool" else NUMBERS)
    extra = draw(
        st.dictionaries(st.from_regex(r"x_[a-z0-9_]{0,20}", fullmatch=True), NUMBERS, max_size=4)
    )
    body.update(extra)
    if not body:
        body["x_count"] = draw(NUMBERS)
    if draw(st.booleans()):
        body["ts"] = draw(st.integers(min_value=NOW - 10**9, max_value=NOW + 10**6))
    if draw(st.booleans()):
        body["seq"] = draw(st.integers(min_value=0, max_value=2**63 - 1))
    return device_class, body


@FAST
@given(telemetry())
def test_valid_telemetry_round_trips(case: tuple[str, dict[str, Any]]) -> None:
    device_class, body = case
    got = decode(Topic("c1", device_class, "d1", "telemetry"), orjson.dumps(body), NOW)
    expected = {k: v for k, v in body.items() if k not in ("ts", "seq")}
    assert got.fields == expected
    for name, value in got.fields.items():
        assert type(value) is (bool if type(expected[name]) is bool else float)
    assert got.seq == body.get("seq")
    if "ts" in body:
        assert got.ts_ms == (body["ts"] if got.ts_flag == "" else NOW)
    else:
        assert (got.ts_ms, got.ts_flag) == (NOW, "missing")


@FAST
@given(st.sampled_from(sorted(PROFILES)), st.text(max_size=30), st.integers(1, 12))
def test_arbitrary_iso_strings_and_depths(device_class: str, ts: str, depth: int) -> None:
    body = orjson.dumps({"ts": ts, "power_w": 1, "x": orjson.Fragment(b"[" * depth + b"]" * depth)})
    _check(device_class, "telemetry", body)


@FAST
@given(st.datetimes(timezones=st.timezones()))
def test_iso_timestamps_with_offset_round_trip(moment: Any) -> None:
    body = orjson.dumps({"ts": moment.isoformat(), "power_w": 1})
    got = decode(Topic("c1", "meter", "m1", "telemetry"), body, NOW)
    expected = round(moment.timestamp() * 1000)
    assert got.ts_flag in ("", "past", "future")
    if got.ts_flag == "":
        assert abs(got.ts_ms - expected) <= 1
