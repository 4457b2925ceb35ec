"""Shelly Gen2/Gen3 over MQTT: ``<prefix>/status/<component>:<id>``, ``<prefix>/events/rpc``
notifications, ``<prefix>/online``, and ``Switch.Set`` requests on ``<prefix>/rpc``.

The prefix is the device's ``topic_prefix`` (by default its id, e.g.
``shellypro3em-xxxxxxxxxxxx``; users rename it) and is the source (CONTRACT.md 7.1). Each
component is decoded by its own table; a ``NotifyStatus`` carries only the fields that
changed, and only those are reported (a field that did not change is not a zero).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.convert import (
    Converter,
    Readings,
    apply,
    channel,
    epoch_ms,
    flag,
    json_object,
    json_value,
    nested,
    number,
    text,
    to,
)
from devices.model import Rejected, Value

NAME = "shelly"
CLASS = "meter"
"""Shelly relays and energy meters are sub-meters (CONTRACT.md 7.3: relay_on is a meter's)."""

WH = 1000
"""Wh per kWh: Shelly's energy counters are in Wh (evcc-io/evcc PR #7335)."""
MWH = 1000
"""mWh per Wh: ``aenergy.by_minute`` is in mWh."""


def _by_minute(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
    """The most recent whole minute of ``aenergy.by_minute`` (mWh) as Wh."""
    if type(value) is dict and type(value.get("by_minute")) is list and value["by_minute"]:
        n = number(value["by_minute"][0])
        if n is not None:
            yield "energy_last_minute_wh", round(n / MWH, 9)


def _both(*converters: Converter) -> Converter:
    def convert(value: Any, obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
        for one in converters:
            yield from one(value, obj)

    return convert


SWITCH: Mapping[str, Converter] = MappingProxyType(
    {
        "output": flag("relay_on"),
        "apower": to("power_w"),
        "voltage": to("voltage_v"),
        "current": to("current_a"),
        "freq": to("frequency_hz"),
        "pf": to("power_factor"),
        "aenergy": _both(nested("total", to("energy_kwh", WH)), _by_minute),
        "ret_aenergy": nested("total", to("energy_export_kwh", WH)),
        "temperature": nested("tC", to("temperature_c")),
    }
)
"""``switch:<id>`` and ``pm1:<id>`` (Switch component; ioBroker.shelly#813 Plus 2PM)."""


def _phase(index: int, letter: str) -> dict[str, Converter]:
    """Phase ``a``/``b``/``c`` of an ``em`` status as L1..L3."""
    n = index + 1
    return {
        f"{letter}_voltage": to(channel("voltage_v", index)),
        f"{letter}_current": to(channel("current_a", index)),
        f"{letter}_act_power": to(f"power_l{n}_w"),  # negative: export on that CT
        f"{letter}_aprt_power": to(f"apparent_power_l{n}_va"),
        f"{letter}_pf": to(f"power_factor_l{n}"),
        f"{letter}_freq": to(channel("frequency_hz", index)),
    }


EM: Mapping[str, Converter] = MappingProxyType(
    {
        "total_act_power": to("power_w"),
        "total_aprt_power": to("apparent_power_va"),
        "total_current": to("current_total_a"),
        "n_current": to("current_n_a"),  # null without a neutral CT
        **{k: v for i, p in enumerate("abc") for k, v in _phase(i, p).items()},
    }
)
"""``em:<id>`` (Pro 3EM): phases a/b/c are L1..L3 (ioBroker.shelly#787)."""

EMDATA: Mapping[str, Converter] = MappingProxyType(
    {
        "total_act": to("energy_kwh", WH),
        "total_act_ret": to("energy_export_kwh", WH),
        **{
            f"{p}_total_act{ret}_energy": to(f"{name}_l{i + 1}_kwh", WH)
            for i, p in enumerate("abc")
            for ret, name in (("", "energy"), ("_ret", "energy_export"))
        },
    }
)
"""``emdata:<id>`` (Pro 3EM energy counters, Wh)."""

EM1: Mapping[str, Converter] = MappingProxyType(
    {
        "act_power": to("power_w"),
        "aprt_power": to("apparent_power_va"),
        "voltage": to("voltage_v"),
        "current": to("current_a"),
        "pf": to("power_factor"),
        "freq": to("frequency_hz"),
    }
)
"""``em1:<id>`` (Pro EM, EM Gen3; evcc-io/evcc discussion #12385)."""

EM1DATA: Mapping[str, Converter] = MappingProxyType(
    {
        "total_act_energy": to("energy_kwh", WH),
        "total_act_ret_energy": to("energy_export_kwh", WH),
    }
)

SYS: Mapping[str, Converter] = MappingProxyType({"uptime": to("uptime_s")})
WIFI: Mapping[str, Converter] = MappingProxyType({"rssi": to("rssi_dbm")})
TEMPERATURE: Mapping[str, Converter] = MappingProxyType({"tC": to("temperature_c")})

COMPONENTS: Mapping[str, tuple[Mapping[str, Converter], bool]] = MappingProxyType(
    {
        "switch": (SWITCH, True),
        "pm1": (SWITCH, True),
        "em": (EM, False),
        "emdata": (EMDATA, False),
        "em1": (EM1, True),
        "em1data": (EM1DATA, True),
        "sys": (SYS, False),
        "wifi": (WIFI, False),
        "temperature": (TEMPERATURE, True),
    }
)
"""Component type -> (its table, whether ``<type>:N`` for N > 0 names a channel ``_lN+1``).
The Pro 3EM's ``em:0`` is one three-phase meter, its phases already named; a second
``switch:1`` is the relay's second channel (``power_l2_w``, ``relay_l2_on``)."""


def _component(key: str, status: Any) -> Readings:
    """The readings of one ``<type>:<id>`` status (or partial status) object."""
    kind, _, index = key.partition(":")
    spec = COMPONENTS.get(kind)
    if spec is None or type(status) is not dict:
        return {}
    table, channelled = spec
    n = int(index) if index.isdigit() and len(index) < 3 else 0
    readings = apply(table, status)
    if not channelled or n == 0:
        return readings
    # one device temperature for the whole relay, whatever the channel reports it
    return {(k if k == "temperature_c" else channel(k, n)): v for k, v in readings.items()}


def _telemetry(source: str, readings: Readings, ts: int | None) -> Adapted:
    if not readings:
        return Adapted(NAME, source, CLASS, ignored="no_readings")
    return Adapted(NAME, source, CLASS, (AdaptedMessage("telemetry", readings=readings, ts_ms=ts),))


def _notify_status(source: str, params: Mapping[str, Any]) -> Adapted:
    readings: Readings = {}
    for key, status in params.items():
        readings.update(_component(key, status))
    return _telemetry(source, readings, epoch_ms(params.get("ts")))


NOTIFICATIONS: Mapping[str, Callable[[str, Mapping[str, Any]], Adapted]] = MappingProxyType(
    {
        "NotifyStatus": _notify_status,
        "NotifyFullStatus": _notify_status,
        # button presses and the like: nothing of the vocabulary (the notes list none)
        "NotifyEvent": lambda source, _params: Adapted(NAME, source, CLASS, ignored="event"),
    }
)
"""``events/rpc`` methods (shelly-api-docs Notifications)."""


def _events_rpc(source: str, payload: bytes) -> Adapted:
    frame = json_object(payload)
    method, params = frame.get("method"), frame.get("params")
    if "result" in frame or "error" in frame:
        return Adapted(NAME, source, CLASS, ignored="rpc_reply")
    handler = NOTIFICATIONS.get(method) if type(method) is str else None
    if handler is None:
        return Adapted(NAME, source, CLASS, ignored="rpc_other")
    if type(params) is not dict:
        raise Rejected("bad_payload", "params is not an object")
    return handler(source, params)


def _status(source: str, component: str, payload: bytes) -> Adapted:
    return _telemetry(source, _component(component, json_object(payload)), None)


def _online(source: str, payload: bytes) -> Adapted:
    """``true`` / ``false`` text, retained, the Last Will."""
    state = {"true": "online", "false": "offline"}.get(text(payload).lower())
    if state is None:
        raise Rejected("bad_status", text(payload)[:60])
    return Adapted(NAME, source, CLASS, (AdaptedMessage("status", state=state),))


def _rpc(source: str, payload: bytes) -> Adapted:
    """A request to the device: ``Switch.Set`` with ``on`` is a command seen on the wire;
    the device's replies (``result`` / ``error``) and other methods are ignored."""
    frame = json_value(payload)
    if type(frame) is not dict:
        raise Rejected("not_object", type(frame).__name__)
    if "result" in frame or "error" in frame:
        return Adapted(NAME, source, CLASS, ignored="rpc_reply")
    params = frame.get("params")
    on = params.get("on") if type(params) is dict else None
    if frame.get("method") != "Switch.Set" or type(on) is not bool:
        return Adapted(NAME, source, CLASS, ignored="rpc_other")
    return Adapted(NAME, source, CLASS, (AdaptedMessage("command", action=_ON[on]),))


_ON = {True: "on", False: "off"}

SUFFIXES: tuple[tuple[str, Callable[[str, str, bytes], Adapted]], ...] = (
    ("/events/rpc", lambda source, _rest, payload: _events_rpc(source, payload)),
    ("/online", lambda source, _rest, payload: _online(source, payload)),
    ("/rpc", lambda source, _rest, payload: _rpc(source, payload)),
    ("/debug/log", lambda source, _rest, _payload: Adapted(NAME, source, CLASS, ignored="log")),
    ("/command", lambda source, _rest, _payload: Adapted(NAME, source, CLASS, ignored="command")),
)
"""Topic endings after the prefix -> handler (``status/<component>`` is matched apart)."""


def decode(topic: str, payload: bytes, options: Options) -> Adapted:
    del options  # every prefix is a device's: nothing to configure
    head, sep, component = topic.rpartition("/status/")
    if sep and head and component and "/" not in component:
        return _status(head, component, payload)
    for suffix, handle in SUFFIXES:
        if topic.endswith(suffix) and len(topic) > len(suffix):
            return handle(topic[: -len(suffix)], suffix, payload)
    head, sep, _ = topic.rpartition("/command/")
    if sep and head:
        return Adapted(NAME, head, CLASS, ignored="command")
    raise Rejected("unknown_topic", topic[:120])


def subscriptions(options: Options) -> tuple[str, ...]:
    """Per prefix pattern (option ``topic_prefix``, default ``+``: one topic level; a
    prefix holding ``/`` needs its own, e.g. ``site/+``)."""
    prefixes: Iterable[str] = options.get("topic_prefix", "+").split(",")
    return tuple(
        f"{p.strip().rstrip('/')}/{s}"
        for p in prefixes
        if p.strip()
        for s in ("online", "events/rpc", "status/+")
    )


ADAPTER = Adapter(NAME, "mqtt", decode, subscriptions)
