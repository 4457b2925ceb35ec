"""Dahua VTO door stations, as DahuaVTO2MQTT publishes their events.

Topics are ``<topic>/<event code>/Event`` (option ``topic``, the bridge's
``MQTT_BROKER_TOPIC_PREFIX``, default ``DahuaVTO``) and ``<topic>/Command/Open`` for the
bridge's open-door command. One bridge serves one VTO, so the source is the prefix: give
each VTO's bridge its own prefix and each its own ``[[adapters]]`` entry. Each event code
has its converter; the codes with nothing for the access vocabulary are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.convert import epoch_ms, json_object
from devices.model import Rejected

NAME = "dahua-vto"
DEFAULT_TOPIC = "DahuaVTO"
CLASS = "access"

METHODS: Mapping[int, str] = MappingProxyType({4: "remote", 5: "button", 6: "fingerprint"})
"""AccessControl ``Method``: 4 remote (app, web, SIP) and 6 fingerprint per MQTTEvents.MD,
5 the exit button per rroller/dahua#318; other codes are left without a method."""


def _clean(value: Any) -> str | None:
    return value if type(value) is str and value else None


def _access(data: Mapping[str, Any]) -> AdaptedMessage:
    """``OpenDoor`` with ``Status`` 1 released the lock; 0 refused it."""
    method = METHODS.get(data["Method"]) if type(data.get("Method")) is int else None
    attrs: dict[str, Any] = {"method": method} if method else {}
    for key, attr in (("CardNo", "credential"), ("UserID", "person"), ("ReaderID", "reader")):
        if (value := _clean(data.get(key))) is not None:
            attrs[attr] = value
    granted = data.get("Status") == 1
    if not granted:
        attrs["reason"] = "other"
    seq = data.get("RecNo")
    return AdaptedMessage(
        "event",
        event="door_unlocked" if granted else "access_denied",
        attrs=attrs,
        ts_ms=epoch_ms(data.get("UTC")),
        seq=seq if type(seq) is int and seq >= 0 else None,
    )


def _call(data: Mapping[str, Any]) -> AdaptedMessage:
    """``CallNoAnswered`` ``Start``: a visitor rang from the VTO."""
    return AdaptedMessage("event", event="intercom_call", ts_ms=epoch_ms(data.get("UTC")))


EventConverter = Callable[[Mapping[str, Any]], AdaptedMessage]

EVENTS: Mapping[tuple[str, str], EventConverter] = MappingProxyType(
    {
        ("AccessControl", "Pulse"): _access,
        ("CallNoAnswered", "Start"): _call,
    }
)
"""(event code, ``Action``) -> converter (elad-bar/DahuaVTO2MQTT MQTTEvents.MD)."""


def decode(topic: str, payload: bytes, options: Options) -> Adapted:
    prefix = options.get("topic", DEFAULT_TOPIC).rstrip("/")
    if not topic.startswith(prefix + "/"):
        raise Rejected("unknown_topic", topic[:120])
    rest = topic[len(prefix) + 1 :]
    if rest == "Command/Open":
        return Adapted(NAME, prefix, CLASS, (AdaptedMessage("command", action="unlock"),))
    code, sep, tail = rest.partition("/")
    if not sep or tail != "Event" or not code:
        raise Rejected("unknown_topic", topic[:120])
    obj = json_object(payload)
    action, data = obj.get("Action"), obj.get("Data")
    convert = EVENTS.get((code, action)) if type(action) is str else None
    if convert is None:
        return Adapted(NAME, prefix, CLASS, ignored="other_event")
    if type(data) is not dict:
        raise Rejected("bad_payload", "Data is not an object")
    return Adapted(NAME, prefix, CLASS, (convert(data),))


def subscriptions(options: Options) -> tuple[str, ...]:
    prefix = options.get("topic", DEFAULT_TOPIC).rstrip("/")
    return (f"{prefix}/+/Event", f"{prefix}/Command/Open")


ADAPTER = Adapter(NAME, "mqtt", decode, subscriptions)
