"""LoRaWAN network servers: ChirpStack v4 (``chirpstack``) and The Things Stack v3 (``tts``).

An uplink gives the radio metadata (the best gateway's RSSI and SNR, frequency, spreading
factor), the frame counter as ``seq``, and the application data: the network server's
decoded object when a codec is configured there, else one of the built-in codecs below
applied to the raw bytes (chosen by the ``codec`` option, TTS's device-repository
``version_ids``, or ChirpStack's ``codec`` tag or device-profile name).

``ts_ms`` is the network server's own time of the uplink (ChirpStack ``time``, TTS
``received_at``), never the hub's clock: a redelivered uplink (a QoS 1 redelivery, a
persistent session replayed after a restart) is the same JSON, so it has the same
``(ts, seq)`` and is stored once. Both servers refuse an uplink whose frame counter did
not increase (chirpstack-network-server#502, #460: a retransmission becomes an error event,
not a second ``up``), so the frame counter alone is never asked to tell uplinks apart; it
could not anyway, since it restarts at 0 after a rejoin and the next uplinks are new data.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.convert import (
    Converter,
    Readings,
    apply,
    flag,
    guess_class,
    iso_ms,
    json_object,
    number,
    path,
    to,
)
from devices.model import Rejected, Value

MAX_FCNT = 2**32 - 1

# Built-in payload codecs: (fPort, bytes) -> readings and events.

Decoded = tuple[Readings, tuple[AdaptedMessage, ...]]


def _nps405_status(data: bytes) -> Decoded:
    """fPort 1, 1 byte: occupied in bit 0, the previous state's duration in bits 1-7
    (nps405-codec.yaml: 0x95 -> occupied, 74). A stored nps405.js reads bit 7 instead,
    which does not reproduce the yaml's examples; 0x95 is occupied under both."""
    if len(data) != 1:
        raise Rejected("bad_payload", f"nps405 status: {len(data)} bytes, not 1")
    return {"occupied": bool(data[0] & 1)}, ()


def _nps405_heartbeat(data: bytes) -> Decoded:
    """fPort 2, 6 bytes: battery 2500 + 4 x byte 1 mV, temperature signed byte 2 / 2 + 10
    (yaml: 00 D3 D8 00 59 0B -> 3.344 V, -10 C). Its occupied bit is where the two codec
    versions disagree, so the status uplinks alone report it."""
    if len(data) != 6:
        raise Rejected("bad_payload", f"nps405 heartbeat: {len(data)} bytes, not 6")
    temperature = int.from_bytes(data[2:3], "big", signed=True) / 2 + 10
    return {"battery_v": (2500 + 4 * data[1]) / 1000, "temperature_c": temperature}, ()


def _qalcosonic_w1(data: bytes) -> Decoded:
    """fPort 100, 51 bytes, frame version 1 (qalcosonic-w1-codec.js): the log volume (L,
    uint32 LE at byte 6) plus 23 hourly deltas of 14 bits packed LSB first from byte 10;
    status bits at byte 5."""
    if len(data) != 51 or data[0] != 0x01:
        raise Rejected("bad_payload", f"qalcosonic w1: {len(data)} bytes, version {data[:1].hex()}")
    status = data[5]
    packed = int.from_bytes(data[10:], "little")
    deltas = sum((packed >> (14 * i)) & 0x3FFF for i in range(23))
    litres = int.from_bytes(data[6:10], "little") + deltas
    backflow = status & 0x60 == 0x60
    burst = status & 0xA0 == 0xA0
    readings: Readings = {
        "volume_m3": litres / 1000,
        # the codec's leakage (0x20 without backflow or burst), or a burst: a leak either way
        "leak": (bool(status & 0x20) and not backflow) or burst,
        "battery_low": bool(status & 0x04),
    }
    events = (AdaptedMessage("event", event="reverse_flow"),) if backflow else ()
    return readings, events


@dataclass(frozen=True, slots=True)
class Codec:
    """A device family's raw payload decoder, one function per fPort."""

    name: str
    device_class: str
    ports: Mapping[int, Callable[[bytes], Decoded]]
    aliases: tuple[str, ...]
    """Lower-case names that select it: TTS ``brand-model``, words in a ChirpStack
    device-profile name."""


CODECS: Mapping[str, Codec] = MappingProxyType(
    {
        c.name: c
        for c in (
            Codec(
                "nwave-nps405",
                "parking",
                {1: _nps405_status, 2: _nps405_heartbeat},
                ("nwave-nps405", "nps405"),
            ),
            Codec(
                "axioma-qalcosonic-w1",
                "meter",
                {100: _qalcosonic_w1},
                ("axioma-qalcosonic-w1", "qalcosonic-w1", "qalcosonic w1", "qalcosonic"),
            ),
        )
    }
)
"""Built-in codecs (TheThingsNetwork/lorawan-devices vendor/nwave, vendor/axioma)."""


def _volts(value: Any, _obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
    """A battery voltage in V, or in mV when it is plainly mV (above 100)."""
    n = number(value)
    if n is not None:
        yield "battery_v", round(n / 1000, 9) if n > 100 else n


def _qalcosonic_leak(_value: Any, obj: Mapping[str, Any]) -> Iterator[tuple[str, Value]]:
    """The Qalcosonic codec's ``leakage`` or ``burst``: a burst is a leak too."""
    flags = [obj.get(k) for k in ("leakage", "burst") if type(obj.get(k)) is bool]
    if flags:
        yield "leak", any(flags)


OBJECT: Mapping[str, Converter] = MappingProxyType(
    {
        "occupied": flag("occupied"),
        "occupancy": flag("occupied"),
        "battery_voltage": _volts,
        "batteryVoltage": _volts,
        "battery_v": _volts,
        "battery_pct": to("battery_pct"),
        "batteryLevel": to("battery_pct"),
        "temperature": to("temperature_c"),
        "current_volume_m3": to("volume_m3"),
        "volume_m3": to("volume_m3"),
        "flow_m3h": to("flow_m3h"),
        "leak": flag("leak"),
        "water_leak": flag("leak"),
        "leakage": _qalcosonic_leak,
        "burst": _qalcosonic_leak,
        "low_battery": flag("battery_low"),
    }
)
"""Keys of a network server's decoded object (the output of the lorawan-devices codecs for
NPS405 and Qalcosonic W1, and common names) -> readings."""

OBJECT_EVENTS: Mapping[str, str] = MappingProxyType({"backflow": "reverse_flow"})
"""Decoded flags that are events when true."""

CLASSES: Mapping[str, str] = MappingProxyType(
    {"occupied": "parking", "volume_m3": "meter", "leak": "meter"}
)


def _object(obj: Mapping[str, Any]) -> Decoded:
    readings = apply(OBJECT, obj)
    events = tuple(
        AdaptedMessage("event", event=event)
        for key, event in OBJECT_EVENTS.items()
        if obj.get(key) is True
    )
    return readings, events


@dataclass(frozen=True, slots=True)
class Uplink:
    """What both servers say about one uplink, in their own field names."""

    source: str
    ts_ms: int | None
    f_cnt: Any
    f_port: Any
    data: Any
    decoded: Any
    rx: Any
    frequency: Any
    spreading_factor: Any
    codec_hints: tuple[str, ...]


def _radio(uplink: Uplink) -> Readings:
    """The best gateway's RSSI and SNR, the frequency and the spreading factor."""
    readings: Readings = {}
    best: tuple[float, Any] | None = None
    for rx in uplink.rx if type(uplink.rx) is list else ():
        if type(rx) is not dict:
            continue
        rssi = number(rx.get("rssi", rx.get("channel_rssi")))
        if rssi is not None and (best is None or rssi > best[0]):
            best = (rssi, rx.get("snr"))
    if best is not None:
        readings["rssi_dbm"] = best[0]
        snr = number(best[1])
        if snr is not None:
            readings["snr_db"] = snr
    readings.update(to("radio_frequency_hz")(uplink.frequency, {}))
    readings.update(to("spreading_factor")(uplink.spreading_factor, {}))
    return readings


def _codec(options: Options, hints: tuple[str, ...]) -> Codec | None:
    # ``model`` too: what ``courtyard decode --model`` passes
    name = options.get("codec") or options.get("model", "")
    if name:
        codec = CODECS.get(name)
        if codec is None:
            raise Rejected("unknown_model", f"no codec {name!r}")
        return codec
    for hint in hints:
        for codec in CODECS.values():
            if any(alias == hint or alias in hint.split() for alias in codec.aliases):
                return codec
    return None


def _payload(uplink: Uplink, options: Options) -> tuple[Decoded, str]:
    """The application data and the class it tells: the decoded object, else a codec."""
    if type(uplink.decoded) is dict and uplink.decoded:
        readings, events = _object(uplink.decoded)
        return (readings, events), guess_class(readings, CLASSES)
    codec = _codec(options, uplink.codec_hints)
    if codec is None or type(uplink.data) is not str or not uplink.data:
        return ({}, ()), codec.device_class if codec is not None else ""
    try:
        raw = base64.b64decode(uplink.data, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("bad_payload", "data is not base64") from None
    port = uplink.f_port if type(uplink.f_port) is int else 0
    decode_port = codec.ports.get(port)
    if decode_port is None:  # a startup or registration uplink: radio data only
        return ({}, ()), codec.device_class
    return decode_port(raw), codec.device_class


def _adapted(name: str, uplink: Uplink, options: Options) -> Adapted:
    (data, events), device_class = _payload(uplink, options)
    readings = {**_radio(uplink), **data}
    f_cnt = uplink.f_cnt if uplink.f_cnt is not None else 0  # proto3 JSON leaves out a 0
    if type(f_cnt) is not int or not 0 <= f_cnt <= MAX_FCNT:
        raise Rejected("bad_payload", "frame counter is not a 32-bit integer")
    ts = uplink.ts_ms
    messages = [AdaptedMessage("event", event=e.event, ts_ms=ts, seq=f_cnt) for e in events]
    if readings:
        messages.insert(0, AdaptedMessage("telemetry", readings=readings, ts_ms=ts, seq=f_cnt))
    if not messages:
        return Adapted(name, uplink.source, device_class, ignored="no_readings")
    return Adapted(name, uplink.source, device_class, tuple(messages))


# ChirpStack v4


def _dict(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else {}


CHIRPSTACK = "chirpstack"
CHIRPSTACK_IGNORED: Mapping[str, str] = MappingProxyType(
    {e: e for e in ("join", "ack", "txack", "log", "location", "integration")}
)
"""Event types that carry no reading: ignored under their own name."""


def _chirpstack_up(source: str, payload: bytes, options: Options) -> Adapted:
    obj = json_object(payload)
    info, tags = _dict(obj.get("deviceInfo")), _dict(path(obj, "deviceInfo", "tags"))
    hints = tuple(
        str(v).lower() for v in (tags.get("codec"), info.get("deviceProfileName")) if type(v) is str
    )
    uplink = Uplink(
        source=source,
        ts_ms=iso_ms(obj.get("time")),
        f_cnt=obj.get("fCnt"),
        f_port=obj.get("fPort"),
        data=obj.get("data"),
        decoded=obj.get("object"),
        rx=obj.get("rxInfo"),
        frequency=path(obj, "txInfo", "frequency"),
        spreading_factor=path(obj, "txInfo", "modulation", "lora", "spreadingFactor"),
        codec_hints=hints,
    )
    return _adapted(CHIRPSTACK, uplink, options)


def _chirpstack_status(source: str, payload: bytes, _options: Options) -> Adapted:
    """The device's answer to DevStatusReq: ``batteryLevel`` in % unless it is mains
    powered or cannot tell."""
    obj = json_object(payload)
    level = number(obj.get("batteryLevel"))
    if level is None or obj.get("externalPowerSource") or obj.get("batteryLevelUnavailable"):
        return Adapted(CHIRPSTACK, source, "", ignored="status")
    ts = iso_ms(obj.get("time"))
    message = AdaptedMessage("telemetry", readings={"battery_pct": level}, ts_ms=ts)
    return Adapted(CHIRPSTACK, source, "", (message,))


CHIRPSTACK_EVENTS: Mapping[str, Callable[[str, bytes, Options], Adapted]] = MappingProxyType(
    {"up": _chirpstack_up, "status": _chirpstack_status}
)


def decode_chirpstack(topic: str, payload: bytes, options: Options) -> Adapted:
    """``application/<app>/device/<devEUI>/event/<type>``; the source is the devEUI."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "application" or parts[2] != "device" or parts[4] != "event":
        raise Rejected("unknown_topic", topic[:120])
    dev_eui, event = parts[3].lower(), parts[5]
    if len(dev_eui) != 16 or any(c not in "0123456789abcdef" for c in dev_eui):
        raise Rejected("unknown_topic", f"devEUI {parts[3][:40]!r}")
    handler = CHIRPSTACK_EVENTS.get(event)
    if handler is None:
        return Adapted(CHIRPSTACK, dev_eui, "", ignored=CHIRPSTACK_IGNORED.get(event, "other"))
    return handler(dev_eui, payload, options)


def subscriptions_chirpstack(options: Options) -> tuple[str, ...]:
    del options
    return ("application/+/device/+/event/up", "application/+/device/+/event/status")


# The Things Stack v3


TTS = "tts"
TTS_IGNORED: Mapping[str, str] = MappingProxyType(
    {"join": "join", "down": "downlink", "service": "service_data", "location": "location"}
)


def _tts_up(source: str, payload: bytes, options: Options) -> Adapted:
    obj = json_object(payload)
    up = obj.get("uplink_message")
    if type(up) is not dict:
        raise Rejected("bad_payload", "no uplink_message")
    if obj.get("simulated") is True:  # the console's "simulate uplink": not the device
        return Adapted(TTS, source, "", ignored="simulated")
    version = _dict(up.get("version_ids"))
    brand, model = version.get("brand_id"), version.get("model_id")
    hints = (f"{brand}-{model}".lower(),) if type(brand) is str and type(model) is str else ()
    uplink = Uplink(
        source=source,
        ts_ms=iso_ms(obj.get("received_at")) or iso_ms(up.get("received_at")),
        f_cnt=up.get("f_cnt"),
        f_port=up.get("f_port"),
        data=up.get("frm_payload"),
        decoded=up.get("decoded_payload"),
        rx=up.get("rx_metadata"),
        frequency=path(up, "settings", "frequency"),  # a string of Hz
        spreading_factor=path(up, "settings", "data_rate", "lora", "spreading_factor"),
        codec_hints=hints,
    )
    return _adapted(TTS, uplink, options)


def decode_tts(topic: str, payload: bytes, options: Options) -> Adapted:
    """``v3/<app>@<tenant>/devices/<device id>/<type>``; the source is the device id."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "v3" or parts[2] != "devices" or not parts[3]:
        raise Rejected("unknown_topic", topic[:120])
    source, event = parts[3], parts[4]
    if event == "up" and len(parts) == 5:
        return _tts_up(source, payload, options)
    return Adapted(TTS, source, "", ignored=TTS_IGNORED.get(event, "other"))


def subscriptions_tts(options: Options) -> tuple[str, ...]:
    del options
    return ("v3/+/devices/+/up",)


CHIRPSTACK_ADAPTER = Adapter(CHIRPSTACK, "mqtt", decode_chirpstack, subscriptions_chirpstack)
TTS_ADAPTER = Adapter(TTS, "mqtt", decode_tts, subscriptions_tts)
