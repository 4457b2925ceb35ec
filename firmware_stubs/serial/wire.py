"""The stubs' own small encoders: CRC-16/MODBUS, DL/T 645 frames and BCD, lock-board sums."""

from __future__ import annotations

import struct


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def modbus_frame(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


def float_words(value: float) -> bytes:
    """IEEE-754 float32, big-endian, high word first ("ABCD")."""
    return struct.pack(">f", value)


def f32(value: float) -> float:
    """``value`` as the float32 the wire carries."""
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


def dlt_frame(address: str, control: int, data: bytes) -> bytes:
    body = (
        b"\x68"
        + bytes.fromhex(address)[::-1]
        + bytes((0x68, control, len(data)))
        + bytes((b + 0x33) & 0xFF for b in data)
    )
    return b"\xfe\xfe\xfe\xfe" + body + bytes((sum(body) & 0xFF, 0x16))


def bcd(value: float, size: int, decimals: int, signed: bool) -> bytes:
    n = round(abs(value) * 10**decimals) % 10 ** (2 * size - (1 if signed else 0))
    raw = bytearray(bytes.fromhex(f"{n:0{2 * size}d}"))
    if signed and value < 0:
        raw[0] |= 0x80
    return bytes(raw[::-1])


def cjt_frame(meter_type: int, address: str, control: int, data: bytes) -> bytes:
    """CJ/T 188: no +0x33; the 7-byte address least significant first."""
    body = bytes((0x68, meter_type)) + bytes.fromhex(address)[::-1] + bytes((control, len(data)))
    body += data
    return b"\xfe\xfe" + body + bytes((sum(body) & 0xFF, 0x16))


def lock_frame(addr: int, cmd: int, data: bytes = b"") -> bytes:
    body = bytes((0x02, addr, cmd)) + data + b"\x03"
    return body + bytes((sum(body) & 0xFF,))
