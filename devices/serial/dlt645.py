"""DL/T 645-2007 frames: read requests, replies, BCD values with decimals and sign.

Frame: ``[FE..] 68 A0..A5 68 C L DATA CS 16``; the address is 12 BCD digits, least significant
byte first; every DATA byte is sent +0x33; CS is the 8-bit sum from the first 68 to the last data
byte (the ``FE`` wake-up preamble is not summed).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from devices.serial.errors import (
    BadChecksum,
    ExceptionResponse,
    MalformedFrame,
    ShortFrame,
    WrongAddress,
)

READ = 0x11
REPLY = 0x91
REPLY_MORE = 0xB1
ABNORMAL = 0xD1
PREAMBLE = b"\xfe\xfe\xfe\xfe"
WILDCARD = "aaaaaaaaaaaa"


@dataclass(frozen=True, slots=True)
class DataId:
    """A data identifier: its value's size, decimals, sign, and the field it becomes."""

    di: int
    size: int
    decimals: int
    signed: bool
    field: str
    unit: str
    factor: int = 1
    """Integer factor to the field's unit (kW -> W: 1000)."""


DATA_IDS = MappingProxyType(
    {
        d.di: d
        for d in (
            DataId(0x00010000, 4, 2, False, "energy_kwh", "kWh"),
            DataId(0x00020000, 4, 2, False, "energy_export_kwh", "kWh"),
            DataId(0x02010100, 2, 1, False, "voltage_v", "V"),
            DataId(0x02010200, 2, 1, False, "voltage_l2_v", "V"),
            DataId(0x02010300, 2, 1, False, "voltage_l3_v", "V"),
            DataId(0x02020100, 3, 3, True, "current_a", "A"),
            DataId(0x02020200, 3, 3, True, "current_l2_a", "A"),
            DataId(0x02020300, 3, 3, True, "current_l3_a", "A"),
            DataId(0x02030000, 3, 4, True, "power_w", "W", 1000),
            DataId(0x02060000, 2, 3, True, "power_factor", ""),
        )
    }
)
"""The identifiers the gateway reads, by DI (DI3-DI2-DI1-DI0 as one integer)."""

METER_DIS = (0x00010000, 0x02010100, 0x02020100, 0x02030000)
"""What a ``dlt645`` meter is polled for: import energy, voltage, current, total power."""


def encode_address(address: str) -> bytes:
    """``"123456789012"`` -> ``12 90 78 56 34 12`` (``a`` digits for the wildcard)."""
    if len(address) != 12 or not all(c in "0123456789aA" for c in address):
        raise ValueError(f"a DL/T 645 address has 12 digits, got {address!r}")
    return bytes.fromhex(address)[::-1]


def decode_address(raw: bytes) -> str:
    return raw[::-1].hex()


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def build(address: str, control: int, data: bytes, *, preamble: bool = True) -> bytes:
    """A whole frame; ``data`` is given plain and sent +0x33."""
    body = (
        b"\x68"
        + encode_address(address)
        + bytes((0x68, control, len(data)))
        + bytes((b + 0x33) & 0xFF for b in data)
    )
    return (PREAMBLE if preamble else b"") + body + bytes((checksum(body), 0x16))


def read_request(address: str, di: int, *, preamble: bool = True) -> bytes:
    """Read one data identifier."""
    return build(address, READ, di.to_bytes(4, "little"), preamble=preamble)


def frame_length(buf: bytes) -> int | None:
    """The length of the frame at the start of ``buf`` including any FE/garbage prefix up to its
    first 0x68, once the L byte has arrived; None while unknown."""
    start = buf.find(b"\x68")
    if start < 0 or len(buf) < start + 10:
        return None
    return start + 12 + buf[start + 9]


@dataclass(frozen=True, slots=True)
class Frame:
    address: str
    control: int
    data: bytes
    """Plain data (0x33 already subtracted)."""


def parse(buf: bytes) -> Frame:
    """One frame, after any number of leading FE bytes."""
    i = 0
    while i < len(buf) and buf[i] == 0xFE:
        i += 1
    raw = buf[i:]
    if len(raw) < 12:
        raise ShortFrame(f"{len(raw)} bytes, a frame has at least 12")
    if raw[0] != 0x68 or raw[7] != 0x68:
        raise MalformedFrame("no 68 .. 68 header")
    size = raw[9]
    if len(raw) < 12 + size:
        raise ShortFrame(f"{len(raw)} bytes of {12 + size}")
    if len(raw) > 12 + size:
        raise MalformedFrame(f"{len(raw) - 12 - size} extra bytes")
    if checksum(raw[: 10 + size]) != raw[10 + size]:
        raise BadChecksum(f"CS {raw[10 + size]:02x}, computed {checksum(raw[: 10 + size]):02x}")
    if raw[11 + size] != 0x16:
        raise MalformedFrame(f"end byte {raw[11 + size]:02x}, not 16")
    data = bytes((b - 0x33) & 0xFF for b in raw[10 : 10 + size])
    return Frame(decode_address(raw[1:7]), raw[8], data)


def bcd_value(raw: bytes, decimals: int, signed: bool, factor: int = 1) -> float:
    """BCD, least significant byte first; bit 7 of the top byte is the sign when ``signed``."""
    digits = bytearray(raw[::-1])
    negative = False
    if signed and digits and digits[0] & 0x80:
        negative = True
        digits[0] &= 0x7F
    text = digits.hex()
    if not text.isdigit():
        raise MalformedFrame(f"not BCD: {raw.hex()}")
    n = int(text) * factor
    value: float = n / 10**decimals
    return -value if negative else value


def encode_bcd(value: float, size: int, decimals: int, signed: bool) -> bytes:
    """The inverse of :func:`bcd_value` (for tests and simulators)."""
    n = round(abs(value) * 10**decimals)
    text = f"{n:0{2 * size}d}"
    if len(text) > 2 * size:
        raise ValueError(f"{value} does not fit {size} BCD bytes")
    raw = bytearray(bytes.fromhex(text))
    if signed and value < 0:
        if raw[0] & 0x80:
            raise ValueError(f"{value} does not fit {size} signed BCD bytes")
        raw[0] |= 0x80
    return bytes(raw[::-1])


def decode_reply(buf: bytes, address: str, di: int) -> tuple[DataId, float]:
    """The value of a read reply, checked against the request (address, DI)."""
    frame = parse(buf)
    if address.lower() != WILDCARD and frame.address != address.lower():
        raise WrongAddress(f"reply from {frame.address}, asked {address}")
    if frame.control == ABNORMAL:
        code = frame.data[0] if frame.data else 0
        raise ExceptionResponse(code, f"abnormal reply, status {code:#04x}")
    if frame.control not in (REPLY, REPLY_MORE):
        raise MalformedFrame(f"control {frame.control:#04x} is not a read reply")
    if len(frame.data) < 4:
        raise MalformedFrame("reply without a data identifier")
    got = int.from_bytes(frame.data[:4], "little")
    if got != di:
        raise MalformedFrame(f"DI {got:08x}, asked {di:08x}")
    spec = DATA_IDS.get(di)
    if spec is None:
        raise MalformedFrame(f"unknown DI {di:08x}")
    value = frame.data[4:]
    if len(value) != spec.size:
        raise MalformedFrame(f"{len(value)} value bytes, DI {di:08x} has {spec.size}")
    return spec, bcd_value(value, spec.decimals, spec.signed, spec.factor)
