"""Decode one native MQTT payload into a :class:`Decoded`, or raise :class:`Rejected`.

Pure: bytes and the receive time in, values out. :func:`decode` raises nothing but
:class:`Rejected`; its ``reason`` is one of :data:`REASONS`.
"""

from __future__ import annotations

import math
import re
from array import array
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import orjson

from devices.model import Decoded, Reading, Rejected, Value
from devices.profile import NAME_RE, Profile, check_attrs
from devices.profiles import PROFILES
from devices.topics import Topic

REASONS = (
    *("unknown_class", "unexpected_message", "too_large", "empty", "not_utf8", "not_json"),
    *("non_finite", "too_deep", "not_object", "bad_status", "bad_ts", "bad_seq"),
    *("bad_field_name", "bad_field_type", "no_readings", "missing_event", "unknown_event"),
    *("bad_attribute", "bad_ack", "too_many_fields"),
)
"""Every reason code :func:`decode` may raise."""

MAX_DEPTH = 8
"""Deepest accepted nesting of arrays and objects; a top-level object is level 1."""
FUTURE_MS = 5 * 60 * 1000
PAST_MS = 7 * 24 * 3600 * 1000
MAX_SEQ = 2**63 - 1
MAX_TS_TEXT = 64
MAX_ID = 128

_RESERVED = frozenset(("ts", "seq"))
_EVENT_RESERVED = frozenset(("ts", "seq", "event"))
_STATES = frozenset(("online", "offline"))
_PLAIN_STATES = {b"online": "online", b"offline": "offline"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
"""A JSON string, or an unterminated one up to the end (so no scan starts twice)."""
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_NUMBER_SHAPE = bytes(
    ord("0") if c in b"0123456789" else ord("e") if c in b"eE" else c if c == ord("+") else 32
    for c in range(256)
)
"""Digits to 0, e/E to e, + kept, all else a space: the shape of exponents and digit runs."""
_CONSTANT_RE = re.compile(rb"NaN|Infinity")
_BIG_NUMBER_RE = re.compile(
    rb"(?<![0-9.])(?:[0-9]+(?:\.[0-9]*)?[eE]\+?0*[1-9][0-9]{2,}"
    rb"|[0-9]{200,}(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
)
"""Numbers that may overflow a double: a 3-digit exponent or 200+ integer digits."""


def decode(topic: Topic, payload: bytes, received_ms: int, *, max_bytes: int = 65536) -> Decoded:
    """Decode one payload published on a native topic (parsed by :func:`devices.topics.parse`).

    ``received_ms`` is the hub's receive time in epoch milliseconds; it replaces a
    missing or implausible device timestamp.
    """
    _, device_class, device, message = topic
    profile = PROFILES.get(device_class)
    if profile is None:
        raise Rejected("unknown_class", _clip(device_class))
    if message not in ("telemetry", "event", "status", "ack"):
        raise Rejected("unexpected_message", _clip(message))
    if type(payload) is not bytes:
        if not isinstance(payload, bytearray | memoryview):
            raise Rejected("not_json", "payload is not bytes")
        payload = bytes(payload)
    if len(payload) > max_bytes:
        raise Rejected("too_large", f"{len(payload)} > {max_bytes} bytes")
    if not payload:
        raise Rejected("empty")
    if message == "status":
        return _status(device_class, device, payload, received_ms)
    obj = _parse(payload)
    if type(obj) is not dict:
        raise Rejected("not_object", type(obj).__name__)
    ts_ms, ts_flag = _timestamp(obj.get("ts"), received_ms)
    seq = _seq(obj.get("seq"))
    if message == "telemetry":
        fields = _fields(profile, obj)
        return Decoded(device_class, device, "telemetry", ts_ms, ts_flag, seq, fields)
    if message == "event":
        name, attrs = _event(profile, obj)
        return Decoded(device_class, device, "event", ts_ms, ts_flag, seq, {}, name, attrs)
    return Decoded(device_class, device, "ack", ts_ms, ts_flag, seq, {}, None, _ack(obj))


def readings(decoded: Decoded) -> list[Reading]:
    """The readings of a decoded telemetry message, each with its unit."""
    profile = PROFILES[decoded.device_class]
    return [
        Reading(decoded.device, name, value, profile.unit(name), decoded.ts_ms)
        for name, value in decoded.fields.items()
    ]


def _clip(text: object) -> str:
    return repr(text)[:80]


def _parse(payload: bytes) -> Any:
    """Parse JSON and enforce the depth limit; classify a failure by its cause."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise Rejected(_why_unparsable(payload), "") from None
    if (type(obj) is dict or type(obj) is list) and (
        payload.count(b"{") + payload.count(b"[") > MAX_DEPTH and _too_deep(obj, 1)
    ):
        raise Rejected("too_deep", f"more than {MAX_DEPTH} levels")
    return obj


def _too_deep(value: dict[str, Any] | list[Any], depth: int) -> bool:
    if depth > MAX_DEPTH:
        return True
    children = value.values() if type(value) is dict else value
    for child in children:
        if (type(child) is dict or type(child) is list) and _too_deep(child, depth + 1):
            return True
    return False


def _why_unparsable(payload: bytes) -> str:
    """The reason code for a payload the JSON parser refused."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    if not payload.strip():
        return "empty"
    bare = _STRING_RE.sub(b"", payload)
    if _raw_depth(bare) > MAX_DEPTH:
        return "too_deep"
    if _CONSTANT_RE.search(bare) or (
        _may_overflow(bare)
        and any(math.isinf(float(match[0])) for match in _BIG_NUMBER_RE.finditer(bare))
    ):
        return "non_finite"
    return "not_json"


def _may_overflow(bare: bytes) -> bool:
    """Cheap pre-check for :data:`_BIG_NUMBER_RE`: a 3-digit exponent or 200 digits in a row."""
    shape = bare.translate(_NUMBER_SHAPE)
    return b"e000" in shape or b"e+000" in shape or b"0" * 200 in shape


def _raw_depth(bare: bytes) -> int:
    """Bracket nesting of unparsed text whose strings were removed, once it may exceed 8."""
    if bare.count(b"[") + bare.count(b"{") <= MAX_DEPTH:
        return 0
    steps = bare.translate(_STEPS, _NOT_BRACKETS)
    if b"\x01" * (MAX_DEPTH + 1) in steps:
        return MAX_DEPTH + 1
    # Signed bytes: +1 per opening bracket, -1 per closing one; the running sum is the depth.
    return max(accumulate(array("b", steps)), default=0)


def _status(device_class: str, device: str, payload: bytes, received_ms: int) -> Decoded:
    state = _PLAIN_STATES.get(payload.strip())
    ts_ms, ts_flag = received_ms, "missing"
    attrs: dict[str, Any] = {}
    if state is None:
        try:
            obj = _parse(payload)
        except Rejected as exc:
            if exc.reason in ("not_utf8", "too_deep", "empty"):
                raise
            raise Rejected("bad_status", "not JSON") from None
        if type(obj) is dict:
            obj_state = obj.get("state")
            ts_ms, ts_flag = _timestamp(obj.get("ts"), received_ms)
            reason = obj.get("reason")
            if type(reason) is str and reason:
                attrs["reason"] = reason[:64]
        else:
            obj_state = obj
        if type(obj_state) is not str or obj_state not in _STATES:
            raise Rejected("bad_status", 'expected "online" or "offline"')
        state = obj_state
    return Decoded(device_class, device, "status", ts_ms, ts_flag, attrs=attrs, status=state)


def _timestamp(raw: Any, received_ms: int) -> tuple[int, str]:
    """The message time and its flag: ``""`` when the device's own time is used."""
    if raw is None:
        return received_ms, "missing"
    kind = type(raw)
    if kind is int:
        ts_ms: int = raw
    elif kind is str:
        ts_ms = _iso_ms(raw)
    else:
        raise Rejected("bad_ts", f"expected epoch ms or ISO-8601, got {kind.__name__}")
    if ts_ms > received_ms + FUTURE_MS:
        return received_ms, "future"
    if ts_ms < received_ms - PAST_MS:
        return received_ms, "past"
    return ts_ms, ""


def _iso_ms(text: str) -> int:
    if len(text) > MAX_TS_TEXT:
        raise Rejected("bad_ts", "timestamp text too long")
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise Rejected("bad_ts", "ISO-8601 timestamp without offset")
        return (moment - _EPOCH) // _MS
    except (ValueError, OverflowError, TypeError):
        raise Rejected("bad_ts", f"not ISO-8601: {_clip(text)}") from None


def _seq(raw: Any) -> int | None:
    if raw is None:
        return None
    if type(raw) is not int or raw < 0 or raw > MAX_SEQ:
        raise Rejected("bad_seq", "expected a non-negative integer")
    return raw


MAX_FIELDS = 64
"""Readings in one message: a meter reports a few dozen at most; thousands of distinct names
would each become a stored series (a device could flood the API and the store with them)."""


def _fields(profile: Profile, obj: dict[str, Any]) -> dict[str, Value]:
    """Numbers and booleans become readings; other unknown values are ignored."""
    if len(obj) > MAX_FIELDS + len(_RESERVED):
        raise Rejected("too_many_fields", f"{len(obj)} keys, at most {MAX_FIELDS} readings")
    numbers = profile.numbers
    fields: dict[str, Value] = {}
    for name, value in obj.items():
        if type(value) is float and name in numbers:  # the usual case, first
            fields[name] = value
        elif name not in _RESERVED:
            _field(profile, fields, name, value)
    if not fields:
        raise Rejected("no_readings", "no numeric or boolean field")
    return fields


def _field(profile: Profile, fields: dict[str, Value], name: str, value: Any) -> None:
    kind = type(value)
    spec = profile.fields.get(name)
    if spec is not None:
        if spec.type == "bool":
            if kind is not bool:
                raise Rejected("bad_field_type", f"{name}: expected bool")
            fields[name] = value
        elif kind is float:
            fields[name] = value
        elif kind is int:
            fields[name] = float(value)
        else:
            raise Rejected("bad_field_type", f"{name}: expected number")
    elif kind is float or kind is int or kind is bool:
        if NAME_RE.fullmatch(name) is None:
            raise Rejected("bad_field_name", _clip(name))
        fields[name] = float(value) if kind is int else value


def _event(profile: Profile, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = obj.get("event")
    if type(name) is not str:
        raise Rejected("missing_event", "expected a string 'event'")
    spec = profile.events.get(name)
    if spec is None:
        raise Rejected("unknown_event", f"{profile.device_class}: {_clip(name)}")
    attrs = {key: value for key, value in obj.items() if key not in _EVENT_RESERVED}
    check_attrs(spec.attrs, attrs, "bad_attribute")
    return name, attrs


def _ack(obj: dict[str, Any]) -> dict[str, Any]:
    command_id, ok, error = obj.get("id"), obj.get("ok"), obj.get("error")
    if type(command_id) is not str or not command_id or len(command_id) > MAX_ID:
        raise Rejected("bad_ack", "expected a string 'id'")
    if type(ok) is not bool:
        raise Rejected("bad_ack", "expected a boolean 'ok'")
    if error is not None and type(error) is not str:
        raise Rejected("bad_ack", "expected a string 'error'")
    return {"id": command_id, "ok": ok, "error": error}
