"""The small converters every ecosystem table is built from, and the adapters' reasons.

A converter takes a vendor value and the whole object it came in, and yields readings
``(name, value)``: none when the value is missing, ``null`` or unreadable (a partial or cached
state decodes what it holds; a key the device has not reported yet is not a zero), one in the
usual case, several for a multi-channel array.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from devices.model import Rejected, Value
from devices.profile import unit_from_name

REASONS = (
    *("empty", "too_large", "not_utf8", "not_json", "not_object", "unknown_topic"),
    *("bad_status", "bad_payload", "no_readings"),
    *("bad_hex", "unknown_model", "needs_request", "unknown_frame"),
    *("short_frame", "bad_crc", "bad_checksum", "wrong_address", "exception_response"),
    *("malformed", "codec_error"),
)
"""Every reason an adapter may reject with (the serial ones are the codecs' error codes)."""

MAX_BYTES = 65536
"""Largest payload read, as for native devices (CONTRACT.md section 2)."""
MAX_INT = 2**53
"""Integers beyond a double's exact range are not a plausible reading."""

Readings = dict[str, Value]
Converter = Callable[[Any, Mapping[str, Any]], Iterable[tuple[str, Value]]]
"""``(vendor value, the object it is in) -> readings``."""


def payload_bytes(payload: bytes) -> bytes:
    """``payload`` checked for size and emptiness."""
    if len(payload) > MAX_BYTES:
        raise Rejected("too_large", f"{len(payload)} bytes")
    if not payload.strip():
        raise Rejected("empty")
    return payload


def json_value(payload: bytes) -> Any:
    """The JSON document of ``payload``; invalid UTF-8 is ``not_json`` too."""
    try:
        return orjson.loads(payload_bytes(payload))
    except orjson.JSONDecodeError as exc:
        raise Rejected("not_json", str(exc)[:120]) from None


def json_object(payload: bytes) -> dict[str, Any]:
    """The JSON object of ``payload``."""
    value = json_value(payload)
    if type(value) is not dict:
        raise Rejected("not_object", type(value).__name__)
    return value


def text(payload: bytes) -> str:
    """``payload`` as stripped UTF-8 text."""
    try:
        return payload_bytes(payload).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Rejected("not_utf8") from None


def number(value: Any) -> int | float | None:
    """A finite number from a JSON number or a numeric string (old Zigbee firmware sends
    ``"80.00"``), else ``None``. Booleans are not numbers; integers stay integers so that
    ``courtyard decode`` prints what the device sent."""
    kind = type(value)
    if kind is int:
        return value if -MAX_INT <= value <= MAX_INT else None
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str and 0 < len(value) <= 32:
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


ON_OFF = {"on": True, "off": False, "true": True, "false": False}


def on_off(value: Any) -> bool | None:
    """``ON``/``OFF`` (any case), ``true``/``false`` as JSON or text, else ``None``."""
    if type(value) is bool:
        return value
    if type(value) is str:
        return ON_OFF.get(value.strip().lower())
    return None


def iso_ms(value: Any) -> int | None:
    """Epoch ms of an ISO-8601 text that carries its offset; ``None`` for local times
    (Tasmota's and Dahua's ``LocaleTime`` have none: the hub's clock is better than a
    guess at the device's zone) and for anything unreadable."""
    if type(value) is not str or not 10 <= len(value) <= 64:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    try:
        return int(when.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return None


def epoch_ms(value: Any, per_second: int = 1000) -> int | None:
    """Epoch ms from a number of seconds (``per_second=1000``) or milliseconds (``1``)."""
    n = number(value) if type(value) is not str else None
    if n is None or n < 0 or n * per_second > 2**53:
        return None
    return int(n * per_second)


def path(obj: Mapping[str, Any], *keys: str) -> Any:
    """``obj[k1][k2]...``, or ``None`` where a level is missing or not an object."""
    value: Any = obj
    for key in keys:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


# Converter factories: the cells of the ecosystems' tables.


def to(name: str, divisor: int = 1) -> Converter:
    """A number as ``name``, divided by ``divisor`` (mV -> V: 1000; Wh -> kWh: 1000), to
    nine decimals: 814345.85 Wh is 814.34585 kWh, not the 814.3458499999999 of the binary
    division (a meter's resolution is far coarser than a nano-unit)."""

    def convert(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
        n = number(value)
        if n is not None:
            yield name, round(n / divisor, 9) if divisor != 1 else n

    return convert


def flag(name: str, *, invert: bool = False) -> Converter:
    """A boolean (or ``ON``/``OFF``, ``true``/``false`` text) as ``name``."""

    def convert(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
        state = on_off(value)
        if state is not None:
            yield name, state != invert

    return convert


def choice(table: Mapping[str, tuple[str, Value]]) -> Converter:
    """A string looked up in ``table`` (case-insensitive) -> one reading."""

    def convert(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
        if type(value) is str and (hit := table.get(value.lower())) is not None:
            yield hit

    return convert


def nested(key: str, converter: Converter) -> Converter:
    """``converter`` applied to ``value[key]`` (Shelly's ``aenergy.total``)."""

    def convert(value: Any, obj: Mapping[str, Any]) -> Iterable[tuple[str, Value]]:
        if type(value) is dict and key in value:
            return converter(value[key], obj)
        return ()

    return convert


_UNIT_TAILS = frozenset(("on", "va", "var", "dbm"))
"""Name endings that act as a unit without being in the suffix-unit table."""


def channel(name: str, index: int) -> str:
    """Channel ``index`` (0-based) of a reading: the first keeps ``name``, the next insert
    ``_l2``, ``_l3``... before the unit suffix, as the vocabulary names phases
    (``power_w`` -> ``power_l2_w``, ``relay_on`` -> ``relay_l2_on``)."""
    if index == 0:
        return name
    head, _, tail = name.rpartition("_")
    if head and (unit_from_name(name) or tail in _UNIT_TAILS):
        return f"{head}_l{index + 1}_{tail}"
    return f"{name}_l{index + 1}"  # power_factor -> power_factor_l2


def apply(table: Mapping[str, Converter], obj: Mapping[str, Any]) -> Readings:
    """Every reading the table's converters make of the keys ``obj`` has, in the table's
    order, so that a later, more precise key wins (Zigbee2MQTT's ``lock_state`` over
    ``state``)."""
    out: Readings = {}
    for key, convert in table.items():
        value = obj.get(key)
        if value is not None:
            out.update(convert(value, obj))
    return out


def guess_class(readings: Iterable[str], table: Mapping[str, str], default: str = "") -> str:
    """The device class of the first reading (in ``table``'s order) that names one."""
    present = set(readings)
    return next((cls for name, cls in table.items() if name in present), default)
