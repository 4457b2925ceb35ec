"""Zigbee2MQTT: device states, availability, the bridge's own topics, ``/set`` commands.

Topics are ``<base_topic>/<friendly name>[/<suffix>]``; a friendly name may hold spaces and
``/``, so the source is everything between the base topic and a known suffix, never "the
second level". State payloads are the device's whole cached state (or only some keys):
every key this table knows is decoded, the rest is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.convert import (
    Converter,
    apply,
    choice,
    epoch_ms,
    flag,
    guess_class,
    iso_ms,
    json_object,
    number,
    text,
    to,
)
from devices.model import Rejected, Value

NAME = "zigbee2mqtt"
DEFAULT_BASE = "zigbee2mqtt"
METER_KEYS = ("power", "energy", "current")


def _voltage(value: Any, obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
    """``voltage`` is V on a plug and mV on a battery device (MCCGQ11LM: 3015 -> 3.015 V).
    A plug also reports power, energy or current; without them the value decides: a battery
    is never below 1000 mV and mains never reaches 1000 V."""
    n = number(value)
    if n is None:
        return
    if any(obj.get(k) is not None for k in METER_KEYS) or n < 1000:
        yield "voltage_v", n
    else:
        yield "battery_v", round(n / 1000, 9)


def _state(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
    """``state`` is a relay (``ON``/``OFF``) on a plug and the lock (``LOCK``/``UNLOCK``)
    on a lock; a plug's ``child_lock`` is a button setting, not a door, and stays out."""
    if type(value) is str:
        hit = STATE_VALUES.get(value.upper())
        if hit is not None:
            yield hit


STATE_VALUES: Mapping[str, tuple[str, Value]] = MappingProxyType(
    {
        "ON": ("relay_on", True),
        "OFF": ("relay_on", False),
        "LOCK": ("locked", True),
        "UNLOCK": ("locked", False),
    }
)

STATE: Mapping[str, Converter] = MappingProxyType(
    {
        "contact": flag("door_open", invert=True),  # true: the contact is closed
        "water_leak": flag("leak"),
        "state": _state,
        "lock_state": choice(
            {
                "locked": ("locked", True),
                "unlocked": ("locked", False),
                "not_fully_locked": ("locked", False),  # a half-thrown bolt does not hold
            }
        ),
        "battery": to("battery_pct"),
        "battery_low": flag("battery_low"),
        "voltage": _voltage,
        "power": to("power_w"),
        "energy": to("energy_kwh"),
        "current": to("current_a"),
        "temperature": to("temperature_c"),
        "device_temperature": to("device_temperature_c"),
        "humidity": to("humidity_pct"),
        "linkquality": to("linkquality"),
    }
)
"""State keys -> readings (zigbee2mqtt.io device pages MCCGQ11LM, SJCGQ11LM, TS011F_plug_1,
YRD256HA20BP, "Exposes")."""

CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "door_open": "access",
        "locked": "access",
        "leak": "meter",
        "energy_kwh": "meter",
        "power_w": "meter",
        "relay_on": "meter",
    }
)
"""The reading that tells a device's class, first match wins."""

_KEY, _PIN, _CARD, _REMOTE, _BUTTON = "key", "pin", "card", "remote", "button"
ACTIONS: Mapping[str, tuple[str, Mapping[str, str]]] = MappingProxyType(
    {
        "lock": ("door_locked", {}),
        "unlock": ("door_unlocked", {}),
        "manual_lock": ("door_locked", {"method": _KEY}),
        "manual_unlock": ("door_unlocked", {"method": _KEY}),
        "key_lock": ("door_locked", {"method": _KEY}),
        "key_unlock": ("door_unlocked", {"method": _KEY}),
        "keypad_lock": ("door_locked", {"method": _PIN}),
        "keypad_unlock": ("door_unlocked", {"method": _PIN}),
        "rfid_lock": ("door_locked", {"method": _CARD}),
        "rfid_unlock": ("door_unlocked", {"method": _CARD}),
        "rf_lock": ("door_locked", {"method": _REMOTE}),
        "rf_unlock": ("door_unlocked", {"method": _REMOTE}),
        "one_touch_lock": ("door_locked", {"method": _BUTTON}),
        "auto_lock": ("door_locked", {}),
        "schedule_lock": ("door_locked", {}),
        "schedule_unlock": ("door_unlocked", {}),
        "lock_failure_invalid_pin_or_id": ("access_denied", {"reason": "unknown_credential"}),
        "unlock_failure_invalid_pin_or_id": ("access_denied", {"reason": "unknown_credential"}),
        "lock_failure_invalid_schedule": ("access_denied", {"reason": "outside_schedule"}),
        "unlock_failure_invalid_schedule": ("access_denied", {"reason": "outside_schedule"}),
    }
)
"""Lock ``action`` values (Yale YRD256HA20BP's lock operation events) -> events."""

SOURCE_METHODS: Mapping[str, str] = MappingProxyType(
    {"keypad": _PIN, "rfid": _CARD, "manual": _KEY, "rf": _REMOTE}
)
"""``action_source_name`` -> ``method``, for the plain ``lock``/``unlock`` actions."""

COMMANDS: Mapping[str, str] = MappingProxyType(
    {"LOCK": "lock", "UNLOCK": "unlock", "ON": "on", "OFF": "off", "TOGGLE": "toggle"}
)
"""``/set`` ``state`` values -> command actions (CONTRACT.md 7.4)."""

BRIDGE: Mapping[str, str] = MappingProxyType(
    {
        "log": "bridge_log",
        "logging": "bridge_log",
        "info": "bridge_info",
        "devices": "bridge_info",
        "groups": "bridge_info",
        "definitions": "bridge_info",
        "extensions": "bridge_info",
        "converters": "bridge_info",
        "config": "bridge_info",
        "health": "bridge_info",
        "networkmap": "bridge_info",
        "event": "bridge_event",
        "request": "bridge_request",
        "response": "bridge_response",
    }
)
"""``<base>/bridge/<topic>`` -> the reason it is ignored (``state`` is the bridge's status)."""


def _ts(obj: Mapping[str, Any]) -> int | None:
    """``last_seen`` (epoch ms or ISO-8601, per the ``last_seen`` option) when present."""
    seen = obj.get("last_seen")
    return iso_ms(seen) if type(seen) is str else epoch_ms(seen, 1)


def _event(obj: Mapping[str, Any], ts: int | None) -> AdaptedMessage | None:
    """The lock's ``action``, if it is one; an empty or null ``action`` is the reset that
    follows every action in a cached state, not an event."""
    action = obj.get("action")
    if type(action) is not str or not action:
        return None
    hit = ACTIONS.get(action)
    if hit is None:
        return None
    event, attrs = hit
    out: dict[str, Any] = dict(attrs)
    source = obj.get("action_source_name")
    if "method" not in out and type(source) is str and source in SOURCE_METHODS:
        out["method"] = SOURCE_METHODS[source]
    user = obj.get("action_user")
    if type(user) is int:
        out["user"] = user
    return AdaptedMessage("event", event=event, attrs=out, ts_ms=ts)


def _status(payload: bytes) -> str:
    """``{"state":"online"}`` (2.x) or the legacy text ``online`` (1.x)."""
    raw = text(payload)
    state = json_object(payload).get("state") if raw.startswith("{") else raw
    if type(state) is not str or state.lower() not in ("online", "offline"):
        raise Rejected("bad_status", repr(state)[:60])
    return state.lower()


def _device_state(name: str, payload: bytes) -> Adapted:
    obj = json_object(payload)
    ts = _ts(obj)
    readings = apply(STATE, obj)
    messages: list[AdaptedMessage] = []
    if readings:
        messages.append(AdaptedMessage("telemetry", readings=readings, ts_ms=ts))
    event = _event(obj, ts)
    if event is not None:
        messages.append(event)
    device_class = "access" if event is not None else guess_class(readings, CLASSES)
    if not messages:
        return Adapted(NAME, name, device_class, ignored="no_readings")
    return Adapted(NAME, name, device_class, tuple(messages))


def _set(name: str, payload: bytes, attribute: str) -> Adapted:
    """A command on the wire: ``{"state":"UNLOCK"}``, or the plain ``UNLOCK`` that some
    clients send (Koenkk/zigbee2mqtt#18852), or ``<name>/set/state`` with a plain value."""
    raw = text(payload)
    if raw.startswith("{"):
        value = json_object(payload).get("state")
    else:
        value = raw if attribute in ("", "state") else None
    action = COMMANDS.get(value.upper()) if type(value) is str else None
    if action is None:
        return Adapted(NAME, name, "", ignored="set_other")
    device_class = "access" if action in ("lock", "unlock") else ""
    return Adapted(NAME, name, device_class, (AdaptedMessage("command", action=action),))


def decode(topic: str, payload: bytes, options: Options) -> Adapted:
    base = options.get("base_topic", DEFAULT_BASE).rstrip("/")
    if not topic.startswith(base + "/") or len(topic) == len(base) + 1:
        raise Rejected("unknown_topic", topic[:120])
    rest = topic[len(base) + 1 :]
    parts = rest.split("/")
    if parts[0] == "bridge":
        if parts[1:] == ["state"]:
            state = _status(payload)
            return Adapted(NAME, "bridge", "", (AdaptedMessage("status", state=state),))
        reason = BRIDGE.get(parts[1], "bridge_other") if len(parts) > 1 else "bridge_other"
        return Adapted(NAME, "bridge", "", ignored=reason)
    last = parts[-1]
    if len(parts) > 1 and last in ("availability", "set", "get"):
        name = "/".join(parts[:-1])
        attribute = ""
    elif len(parts) > 2 and parts[-2] in ("set", "get"):
        name, last, attribute = "/".join(parts[:-2]), parts[-2], parts[-1]
    else:
        return _device_state(rest, payload)
    if not name:
        raise Rejected("unknown_topic", topic[:120])
    if last == "availability":
        return Adapted(NAME, name, "", (AdaptedMessage("status", state=_status(payload)),))
    if last == "get":
        return Adapted(NAME, name, "", ignored="get_request")
    return _set(name, payload, attribute)


def subscriptions(options: Options) -> tuple[str, ...]:
    return (f"{options.get('base_topic', DEFAULT_BASE).rstrip('/')}/#",)


ADAPTER = Adapter(NAME, "mqtt", decode, subscriptions)

__all__ = ["ADAPTER"]
