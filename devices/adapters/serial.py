"""Serial frames as adapters, for ``courtyard decode``: DL/T 645-2007, CJ/T 188-2004, the
CU16 lock board, Modbus RTU register reads.

They wrap the codecs of :mod:`devices.serial` (which the field-bus bridge uses) and add
nothing to their checks: a codec error becomes a rejection under the codec's own code. A
master's request decodes to a ``request`` message saying what it asks for; a reply to the
readings it carries. The topic argument is unused; ``options`` may hold ``model`` (a Modbus
register-map model) and ``request`` (the hex of the request a Modbus reply answers).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.convert import Readings, payload_bytes
from devices.model import Rejected
from devices.serial import cjt188, dlt645, lockboard, modbus
from devices.serial.errors import BadChecksum, BadCrc, CodecError, MalformedFrame, ShortFrame
from devices.serial.registers import METER_MAPS, Block, MeterMap, decode_block

Decoder = Callable[[str, bytes, Options], Adapted]


def _rejecting(name: str, decode: Decoder) -> Decoder:
    """``decode`` with the codecs' errors as rejections (``bad_crc``, ``short_frame``...)."""

    def run(topic: str, payload: bytes, options: Options) -> Adapted:
        try:
            return decode(topic, payload_bytes(payload), options)
        except CodecError as exc:
            raise Rejected(exc.code, f"{name}: {exc}") from None

    return run


def _request(adapter: str, source: str, device_class: str, attrs: dict[str, Any]) -> Adapted:
    return Adapted(adapter, source, device_class, (AdaptedMessage("request", attrs=attrs),))


def _telemetry(adapter: str, source: str, device_class: str, readings: Readings) -> Adapted:
    if not readings:
        return Adapted(adapter, source, device_class, ignored="no_readings")
    message = AdaptedMessage("telemetry", readings=readings)
    return Adapted(adapter, source, device_class, (message,))


# DL/T 645-2007


def _dlt645(_topic: str, payload: bytes, _options: Options) -> Adapted:
    frame = dlt645.parse(payload)
    if len(frame.data) < 4 and frame.control != dlt645.ABNORMAL:
        raise MalformedFrame("no data identifier")
    # an abnormal reply carries a status byte, not a DI: decode_reply raises on it first
    di = int.from_bytes(frame.data[:4], "little")
    if frame.control == dlt645.READ:
        spec = dlt645.DATA_IDS.get(di)
        attrs = {"address": frame.address, "di": f"{di:08x}"}
        if spec is not None:
            attrs["field"] = spec.field
        return _request("dlt645", frame.address, "meter", attrs)
    spec, value = dlt645.decode_reply(payload, frame.address, di)
    return _telemetry("dlt645", frame.address, "meter", {spec.field: value})


# CJ/T 188-2004


def _cjt188(_topic: str, payload: bytes, _options: Options) -> Adapted:
    raw = cjt188.frame(payload)
    meter_type, address, control = raw[1], raw[2:9][::-1].hex(), raw[9]
    if control == cjt188.READ:
        data = raw[11 : 11 + raw[10]]
        attrs = {"address": address, "meter_type": f"{meter_type:#04x}", "di": data[:2].hex()}
        return _request("cjt188", address, "meter", attrs)
    reading = cjt188.decode_reply(payload, meter_type, address)
    readings: Readings = {
        "volume_m3": reading.volume_m3,
        "volume_settlement_m3": reading.settlement_m3,  # at the last settlement day
    }
    return _telemetry("cjt188", address, "meter", readings)


# The CU16 lock board

LOCKBOARD_REQUESTS: Mapping[int, Callable[[int], dict[str, Any]]] = MappingProxyType(
    {
        lockboard.STATUS: lambda addr: {"board": addr >> 4, "ask": "status"},
        lockboard.STATUS_ALL: lambda addr: {"board": addr >> 4, "ask": "status_all"},
        lockboard.UNLOCK: lambda addr: {
            "board": addr >> 4,
            "lock": (addr & 0x0F) + 1,
            "ask": "unlock",
        },
    }
)
"""Request command -> what it asks for (lock = low nibble + 1, per devices.serial.lockboard)."""


def _lockboard(_topic: str, payload: bytes, _options: Options) -> Adapted:
    """A 5-byte request or the 9-byte status reply; per lock ``locked`` (the hook is closed:
    shut and latched) and ``occupied`` (the infrared sensor sees a parcel), lock 1 under the
    plain name and lock n under ``_ln`` like any channel."""
    if len(payload) == lockboard.STATUS_LEN:
        board = payload[1] >> 4
        status = lockboard.decode_status(payload, board)
        readings: Readings = {}
        for name, values in (("locked", status.locked), ("occupied", status.occupied)):
            for i, value in enumerate(values):
                readings[name if i == 0 else f"{name}_l{i + 1}"] = value
        return _telemetry("lockboard", str(board), "locker", readings)
    if len(payload) != 5:
        raise ShortFrame(f"{len(payload)} bytes: a request has 5, a status reply 9")
    if payload[0] != lockboard.STX or payload[3] != lockboard.ETX:
        raise MalformedFrame("no STX/ETX")
    if lockboard.checksum(payload[:4]) != payload[4]:
        raise BadChecksum(f"SUM {payload[4]:02x}")
    describe = LOCKBOARD_REQUESTS.get(payload[2])
    if describe is None:
        raise MalformedFrame(f"command {payload[2]:#04x}")
    attrs = describe(payload[1])
    return _request("lockboard", str(attrs["board"]), "locker", attrs)


# Modbus RTU


def _modbus_request(frame: bytes) -> tuple[int, int, int, int]:
    """(slave, function, address, count) of an 8-byte read request."""
    if len(frame) != 8:
        raise ShortFrame(f"{len(frame)} bytes, a read request has 8")
    if modbus.crc16(frame[:6]) != int.from_bytes(frame[6:], "little"):
        raise BadCrc(f"CRC {frame[6:].hex()} does not match {modbus.crc16(frame[:6]):04x}")
    slave, function, address, count = struct.unpack(">BBHH", frame[:6])
    if function not in modbus.READ_FUNCTIONS:
        raise MalformedFrame(f"function {function:#04x} is not a register read")
    return slave, function, address, count


def _meter_map(options: Options) -> MeterMap | None:
    model = options.get("model", "")
    if not model:
        return None
    found = METER_MAPS.get(model.lower())
    if found is None:
        raise Rejected("unknown_model", f"{model!r}; known: {', '.join(sorted(METER_MAPS))}")
    return found


def _covered(meter: MeterMap, function: int, address: int, count: int) -> Block:
    """The map's registers that a read of ``count`` from ``address`` returns whole."""
    specs = tuple(
        s
        for s in meter.specs
        if s.function == function
        and address <= s.address
        and s.address + s.width <= address + count
    )
    return Block(function, address, count, specs)


def _modbus(_topic: str, payload: bytes, options: Options) -> Adapted:
    meter = _meter_map(options)
    request_hex = options.get("request", "")
    if not request_hex:
        if len(payload) == 8 and payload[1] in modbus.READ_FUNCTIONS:
            slave, function, address, count = _modbus_request(payload)
            attrs: dict[str, Any] = {
                "slave": slave,
                "function": function,
                "address": address,
                "count": count,
            }
            if meter is not None:
                attrs["fields"] = [s.field for s in _covered(meter, function, address, count).specs]
            return _request("modbus", str(slave), "meter", attrs)
        raise Rejected("needs_request", "a reply decodes with --request (and --model)")
    try:
        request = bytes.fromhex(request_hex.replace("0x", ""))
    except ValueError:
        raise Rejected("bad_hex", "request is not hex") from None
    slave, function, address, count = _modbus_request(request)
    if meter is None:
        raise Rejected("unknown_model", "a reply decodes with a register map (--model)")
    registers = modbus.decode_reply(payload, slave, function, count)
    block = _covered(meter, function, address, count)
    return _telemetry("modbus", str(slave), "meter", decode_block(block, registers))


DLT645 = Adapter("dlt645", "serial", _rejecting("dlt645", _dlt645))
CJT188 = Adapter("cjt188", "serial", _rejecting("cjt188", _cjt188))
LOCKBOARD = Adapter("lockboard", "serial", _rejecting("lockboard", _lockboard))
MODBUS = Adapter("modbus", "serial", _rejecting("modbus", _modbus))
