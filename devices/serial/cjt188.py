"""CJ/T 188-2004 water/gas meter frames: ``[FE..] 68 T A0..A6 C L DI0 DI1 SER DATA CS 16``.

No +0x33 offset (unlike DL/T 645); CS is the 8-bit sum from 0x68 to the last data byte; the
address is 7 bytes, least significant first. Read 0x901F returns the cumulative flow (BCD,
2 decimals, with its unit code), the settlement-day flow, the meter's clock and a status word.
The DI byte order differs between vendors: both are accepted in replies.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.serial.errors import (
    BadChecksum,
    ExceptionResponse,
    MalformedFrame,
    ShortFrame,
    WrongAddress,
)

READ = 0x01
REPLY = 0x81
ABNORMAL = 0xC1
DI_METERING = 0x901F
WATER = 0x10
GAS = 0x30
PREAMBLE = b"\xfe\xfe"
UNIT_M3: dict[int, float] = {0x2C: 1.0, 0x29: 0.001}
"""Volume unit codes -> factor to m3 (0x2C m3, 0x29 L)."""


def encode_address(address: str) -> bytes:
    """14 hex digits, most significant first -> 7 bytes least significant first."""
    if len(address) != 14:
        raise ValueError(f"a CJ/T 188 address has 14 digits, got {address!r}")
    return bytes.fromhex(address)[::-1]


def build(meter_type: int, address: str, control: int, data: bytes) -> bytes:
    body = bytes((0x68, meter_type)) + encode_address(address) + bytes((control, len(data))) + data
    return PREAMBLE + body + bytes((sum(body) & 0xFF, 0x16))


def read_request(meter_type: int, address: str, ser: int = 0) -> bytes:
    return build(meter_type, address, READ, DI_METERING.to_bytes(2, "little") + bytes((ser,)))


def frame_length(buf: bytes) -> int | None:
    start = buf.find(b"\x68")
    if start < 0 or len(buf) < start + 11:
        return None
    return start + 13 + buf[start + 10]


@dataclass(frozen=True, slots=True)
class Reading:
    volume_m3: float
    settlement_m3: float
    time: str
    """The meter's clock, ``YYYY-MM-DDTHH:MM:SS`` (not validated as a date)."""
    status: bytes


def _bcd(raw: bytes) -> int:
    text = raw[::-1].hex()
    if not text.isdigit():
        raise MalformedFrame(f"not BCD: {raw.hex()}")
    return int(text)


def frame(buf: bytes) -> bytes:
    """The frame after its FE preamble, with its start, length, checksum and end checked."""
    raw = buf.lstrip(b"\xfe")
    if len(raw) < 13:
        raise ShortFrame(f"{len(raw)} bytes, a frame has at least 13")
    if raw[0] != 0x68:
        raise MalformedFrame("no 68 start byte")
    size = raw[10]
    if len(raw) < 13 + size:
        raise ShortFrame(f"{len(raw)} bytes of {13 + size}")
    if len(raw) > 13 + size:
        raise MalformedFrame(f"{len(raw) - 13 - size} extra bytes")
    if sum(raw[: 11 + size]) & 0xFF != raw[11 + size]:
        raise BadChecksum(f"CS {raw[11 + size]:02x}, computed {sum(raw[: 11 + size]) & 0xFF:02x}")
    if raw[12 + size] != 0x16:
        raise MalformedFrame(f"end byte {raw[12 + size]:02x}, not 16")
    return raw


def decode_reply(buf: bytes, meter_type: int, address: str) -> Reading:
    raw = frame(buf)
    size = raw[10]
    if raw[2:9] != encode_address(address) and address.lower() != "a" * 14:
        raise WrongAddress(f"reply from {raw[2:9][::-1].hex()}, asked {address}")
    if meter_type not in (raw[1], 0xAA):
        raise WrongAddress(f"reply from meter type {raw[1]:#04x}, asked {meter_type:#04x}")
    control, data = raw[9], raw[11 : 11 + size]
    if control == ABNORMAL:
        code = data[3] if len(data) > 3 else 0
        raise ExceptionResponse(code, f"abnormal reply, status {code:#04x}")
    if control != REPLY:
        raise MalformedFrame(f"control {control:#04x} is not a read reply")
    if len(data) != 22 or data[:2] not in (b"\x1f\x90", b"\x90\x1f"):
        raise MalformedFrame(f"not a 901F reply ({len(data)} data bytes)")
    factors = [UNIT_M3.get(data[7]), UNIT_M3.get(data[12])]
    if None in factors:
        raise MalformedFrame(f"unit codes {data[7]:#04x}/{data[12]:#04x} are not volumes")
    t = data[13:20]
    if not t.hex().isdigit():
        raise MalformedFrame(f"time not BCD: {t.hex()}")
    when = f"{t[6]:02x}{t[5]:02x}-{t[4]:02x}-{t[3]:02x}T{t[2]:02x}:{t[1]:02x}:{t[0]:02x}"
    return Reading(
        _bcd(data[3:7]) / 100 * (factors[0] or 1.0),
        _bcd(data[8:12]) / 100 * (factors[1] or 1.0),
        when,
        bytes(data[20:22]),
    )
