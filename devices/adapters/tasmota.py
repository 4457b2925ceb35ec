"""Tasmota: ``tele/<topic>/SENSOR`` (ENERGY), ``STATE``, ``LWT``, ``stat/<topic>/STATUS8``,
``STATUS10``, ``STATUS11``, ``RESULT``, ``POWER``, and ``cmnd/<topic>/POWER`` commands.

The topic follows the device's ``FullTopic`` (option ``full_topic``, default
``%prefix%/%topic%/``; users reorder it, e.g. ``%topic%/%prefix%/``); the source is the
``%topic%`` part. Values may be numbers or numeric strings; on multi-channel and multi-phase
devices they are arrays, one per channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.convert import (
    Converter,
    Readings,
    apply,
    channel,
    iso_ms,
    json_object,
    number,
    on_off,
    path,
    text,
    to,
)
from devices.model import Rejected, Value

NAME = "tasmota"
DEFAULT_FULL_TOPIC = "%prefix%/%topic%/"
CLASS = "meter"
"""Tasmota devices here are plugs and sub-meters: relays and energy (CONTRACT.md 7.3)."""


def _numbers(values: list[Any]) -> list[int | float] | None:
    """An array of numbers (or numeric strings), one per channel; None if any is unreadable."""
    out = [number(v) for v in values[:16]]
    if not out or any(n is None for n in out):
        return None
    return [n for n in out if n is not None]


def per_channel(name: str, *, total: bool = False) -> Converter:
    """A value per channel: ``name`` for the first, ``_l2``... for the next; with ``total``
    an array also gives the sum as ``name`` and every channel its own name from ``_l1``
    (``"Power":[12,0]`` -> ``power_w`` 12, ``power_l1_w`` 12, ``power_l2_w`` 0)."""

    def convert(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
        if type(value) is not list:  # the single-channel plug: most messages
            n = number(value)
            if n is not None:
                yield name, n
            return
        values = _numbers(value)
        if values is None:
            return
        if total:
            yield name, round(sum(values), 6)
            for i, v in enumerate(values):
                yield (channel(name, i) if i else _first(name)), v
        else:
            for i, v in enumerate(values):
                yield channel(name, i), v

    return convert


def summed(name: str) -> Converter:
    """A scalar, or the sum of an array (apparent and reactive power, today's energy)."""

    def convert(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
        if type(value) is not list:
            n = number(value)
            if n is not None:
                yield name, n
            return
        values = _numbers(value)
        if values is not None:
            yield name, round(sum(values), 6)

    return convert


def _first(name: str) -> str:
    """``power_w`` -> ``power_l1_w``: the first channel's own name beside the total."""
    head, _, tail = name.rpartition("_")
    return f"{head}_l1_{tail}"


ENERGY: Mapping[str, Converter] = MappingProxyType(
    {
        "Total": per_channel("energy_kwh", total=True),
        "Today": summed("energy_today_kwh"),
        "Yesterday": summed("energy_yesterday_kwh"),
        "Power": per_channel("power_w", total=True),
        "ApparentPower": summed("apparent_power_va"),
        "ReactivePower": summed("reactive_power_var"),
        "Factor": per_channel("power_factor"),
        "Voltage": per_channel("voltage_v"),
        "Current": per_channel("current_a"),
        "Frequency": per_channel("frequency_hz"),
    }
)
"""The ENERGY object (tasmota.github.io Sonoff-Pow-R2 unit table; arrays per
xdrv_03_energy.ino). ``Period`` (Wh since the last teleperiod) is left out: it double-counts
``Total``."""


def _sensors(obj: Mapping[str, Any]) -> Readings:
    """Readings of a SENSOR object (or ``StatusSNS``): ENERGY, and the first temperature
    of a sensor object (``"DS18B20":{"Temperature":21.5}``, in ``TempUnit``)."""
    readings: Readings = {}
    energy = obj.get("ENERGY")
    if type(energy) is dict:
        readings.update(apply(ENERGY, energy))
    fahrenheit = obj.get("TempUnit") == "F"
    for value in obj.values():
        if type(value) is dict and "temperature_c" not in readings:
            t = number(value.get("Temperature"))
            if t is not None:
                readings["temperature_c"] = round((t - 32) / 1.8, 2) if fahrenheit else t
    return readings


def _relays(obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
    """``POWER`` or ``POWER1``..``POWERn`` (``ON``/``OFF``) -> ``relay_on``, ``relay_l2_on``..."""
    for key, raw in obj.items():
        if key == "POWER" or (key.startswith("POWER") and key[5:].isdigit()):
            index = int(key[5:]) - 1 if key != "POWER" else 0
            state = on_off(raw)
            if state is not None and 0 <= index < 32:
                yield channel("relay_on", index), state


STATE: Mapping[str, Converter] = MappingProxyType(
    {
        "UptimeSec": to("uptime_s"),
        "Wifi": lambda value, _obj: [
            *to("rssi_dbm")(path(value, "Signal"), {}),  # dBm, newer firmware only
            *to("wifi_rssi_pct")(path(value, "RSSI"), {}),  # a 0-100 % quality, not dBm
        ],
    }
)
"""STATE keys (tasmota.github.io DeepSleep example); the relays are read by ``_relays``."""


def _state(obj: Mapping[str, Any]) -> Readings:
    readings = apply(STATE, obj)
    readings.update(_relays(obj))
    return readings


def _ts(obj: Mapping[str, Any]) -> int | None:
    """``Time`` when it carries an offset; device-local times are left to the hub's clock."""
    return iso_ms(obj.get("Time"))


def _telemetry(topic: str, readings: Readings, ts: int | None) -> Adapted:
    if not readings:
        return Adapted(NAME, topic, CLASS, ignored="no_readings")
    return Adapted(NAME, topic, CLASS, (AdaptedMessage("telemetry", readings=readings, ts_ms=ts),))


def _sensor(topic: str, payload: bytes) -> Adapted:
    obj = json_object(payload)
    return _telemetry(topic, _sensors(obj), _ts(obj))


def _state_message(topic: str, payload: bytes) -> Adapted:
    obj = json_object(payload)
    return _telemetry(topic, _state(obj), _ts(obj))


def _wrapped(key: str, read: Callable[[Mapping[str, Any]], Readings]) -> Handler:
    """``stat/<topic>/STATUS8`` ``{"StatusSNS":{...}}``, ``STATUS11`` ``{"StatusSTS":{...}}``."""

    def handle(topic: str, payload: bytes) -> Adapted:
        inner = json_object(payload).get(key)
        if type(inner) is not dict:
            raise Rejected("bad_payload", f"no {key} object")
        return _telemetry(topic, read(inner), _ts(inner))

    return handle


def _lwt(topic: str, payload: bytes) -> Adapted:
    """``Online`` / ``Offline`` (my_user_config.h ``MQTT_LWT_ONLINE``/``OFFLINE``)."""
    raw = text(payload)
    state = {"Online": "online", "Offline": "offline"}.get(raw.capitalize())
    if state is None:
        raise Rejected("bad_status", raw[:60])
    return Adapted(NAME, topic, CLASS, (AdaptedMessage("status", state=state),))


def _result(topic: str, payload: bytes) -> Adapted:
    """A command's result: a relay's new state when it has one."""
    readings = dict(_relays(json_object(payload)))
    if not readings:
        return Adapted(NAME, topic, CLASS, ignored="command_result")
    return _telemetry(topic, readings, None)


def _power_text(index: int) -> Handler:
    """``stat/<topic>/POWER`` (or ``POWERn``): the plain text ``ON``/``OFF``, or the JSON
    ``{"POWER":"ON"}`` that firmware 9.5 also publishes there (tasmota docs DeepSleep.md)."""

    def handle(topic: str, payload: bytes) -> Adapted:
        raw = text(payload)
        if raw.startswith("{"):
            return _result(topic, payload)
        state = on_off(raw)
        if state is None:
            raise Rejected("bad_payload", "not ON/OFF")
        return _telemetry(topic, {channel("relay_on", index): state}, None)

    return handle


COMMANDS = MappingProxyType(
    {"ON": "on", "1": "on", "OFF": "off", "0": "off", "TOGGLE": "toggle", "2": "toggle"}
)
"""``cmnd/<topic>/POWER`` payloads -> actions (CONTRACT.md 7.4)."""


def _command(topic: str, payload: bytes) -> Adapted:
    """``cmnd/<topic>/POWER ON``; an empty payload only asks for the state."""
    if not payload.strip():
        return Adapted(NAME, topic, CLASS, ignored="query")
    action = COMMANDS.get(text(payload).upper())
    if action is None:
        return Adapted(NAME, topic, CLASS, ignored="command_other")
    return Adapted(NAME, topic, CLASS, (AdaptedMessage("command", action=action),))


Handler = Callable[[str, bytes], Adapted]

HANDLERS: Mapping[tuple[str, str], Handler] = MappingProxyType(
    {
        ("tele", "SENSOR"): _sensor,
        ("tele", "STATE"): _state_message,
        ("tele", "LWT"): _lwt,
        ("stat", "STATUS8"): _wrapped("StatusSNS", _sensors),
        ("stat", "STATUS10"): _wrapped("StatusSNS", _sensors),
        ("stat", "STATUS11"): _wrapped("StatusSTS", _state),
        ("stat", "RESULT"): _result,
        ("stat", "POWER"): _power_text(0),
        **{("stat", f"POWER{n}"): _power_text(n - 1) for n in range(1, 9)},
        **{("cmnd", "POWER" + n): _command for n in ("", *map(str, range(1, 9)))},
    }
)
"""(prefix, last topic level) -> handler; every other topic of a prefix is ignored."""

IGNORED = MappingProxyType({"tele": "tele_other", "stat": "stat_other", "cmnd": "command_other"})


def _topic_re(full_topic: str) -> re.Pattern[str]:
    """The FullTopic template as a pattern: ``%prefix%`` and ``%topic%`` captured, the
    other substitutions (``%hostname%``, ``%id%``) one level each."""
    template = full_topic if full_topic.endswith("/") else full_topic + "/"
    out = ""
    for piece in re.split(r"(%[a-z]+%)", template):
        if piece == "%prefix%":
            out += r"(?P<prefix>cmnd|stat|tele)"
        elif piece == "%topic%":
            out += r"(?P<topic>[^#+]+?)"
        elif piece.startswith("%") and piece.endswith("%") and len(piece) > 2:
            out += r"[^/]+"
        else:
            out += re.escape(piece)
    return re.compile(out + r"(?P<suffix>[^/]+)")


DEFAULT_TOPIC_RE = _topic_re(DEFAULT_FULL_TOPIC)
"""Built once; another template is built per message (re keeps its own compiled cache)."""


def decode(topic: str, payload: bytes, options: Options) -> Adapted:
    full_topic = options.get("full_topic", DEFAULT_FULL_TOPIC)
    if "%topic%" not in full_topic or "%prefix%" not in full_topic:
        raise Rejected("unknown_topic", "full_topic needs %prefix% and %topic%")
    pattern = DEFAULT_TOPIC_RE if full_topic == DEFAULT_FULL_TOPIC else _topic_re(full_topic)
    match = pattern.fullmatch(topic)
    if match is None:
        raise Rejected("unknown_topic", topic[:120])
    prefix, source, suffix = match["prefix"], match["topic"], match["suffix"]
    handler = HANDLERS.get((prefix, suffix))
    if handler is None:
        return Adapted(NAME, source, CLASS, ignored=IGNORED[prefix])
    return handler(source, payload)


def subscriptions(options: Options) -> tuple[str, ...]:
    """One filter per prefix: the template with ``%topic%`` and the other substitutions
    as ``+`` (a ``%topic%`` holding ``/`` needs its own filter in the options)."""
    full_topic = options.get("full_topic", DEFAULT_FULL_TOPIC)
    template = re.sub(r"%(?!prefix%)[a-z]+%", "+", full_topic).rstrip("/")
    return tuple(template.replace("%prefix%", p) + "/+" for p in ("tele", "stat", "cmnd"))


ADAPTER = Adapter(NAME, "mqtt", decode, subscriptions)
