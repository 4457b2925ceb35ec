"""Modbus RTU frames for register reads (function 0x03 / 0x04): requests, replies, CRC.

The CRC-16/MODBUS comes from pymodbus's RTU framer; the read frames themselves are a few fixed
bytes, built and checked here so that every failure maps onto :mod:`devices.serial.errors`.
"""

from __future__ import annotations

import struct

from pymodbus.framer.rtu import FramerRTU

from devices.serial.errors import (
    BadCrc,
    ExceptionResponse,
    MalformedFrame,
    ShortFrame,
    WrongAddress,
)

READ_HOLDING = 0x03
READ_INPUT = 0x04
READ_FUNCTIONS = (READ_HOLDING, READ_INPUT)
MAX_READ_REGISTERS = 125
"""Protocol limit of one read; meter maps use smaller blocks (see registers.py)."""


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` as an integer (0x4B37 for b"123456789")."""
    swapped = FramerRTU.compute_CRC(data)  # pymodbus returns it ready to pack big-endian
    return ((swapped & 0xFF) << 8) | (swapped >> 8)


def with_crc(body: bytes) -> bytes:
    """``body`` followed by its CRC, low byte first."""
    return body + crc16(body).to_bytes(2, "little")


def read_request(slave: int, function: int, address: int, count: int) -> bytes:
    """A read of ``count`` registers from ``address`` (0-based PDU address)."""
    if not 1 <= slave <= 247:
        raise ValueError(f"slave address {slave} out of 1..247")
    if function not in READ_FUNCTIONS:
        raise ValueError(f"function {function:#04x} is not a register read")
    if not 1 <= count <= MAX_READ_REGISTERS or not 0 <= address <= 0xFFFF - count + 1:
        raise ValueError(f"bad register range {address:#06x}+{count}")
    return with_crc(struct.pack(">BBHH", slave, function, address, count))


def reply_length(buf: bytes) -> int | None:
    """How many bytes the reply that starts ``buf`` has, once that is known (else None)."""
    if len(buf) < 2:
        return None
    if buf[1] & 0x80:
        return 5
    if len(buf) < 3:
        return None
    return 5 + buf[2]


def decode_reply(frame: bytes, slave: int, function: int, count: int) -> list[int]:
    """The registers of a read reply, checked against the request it answers.

    Checks, in order: length, CRC, slave address, exception flag, function, byte count.
    """
    if len(frame) < 5:
        raise ShortFrame(f"{len(frame)} bytes, a reply has at least 5")
    expected = reply_length(frame)
    if expected is not None and len(frame) < expected and not frame[1] & 0x80:
        raise ShortFrame(f"{len(frame)} bytes of {expected}")
    body_len = 3 if frame[1] & 0x80 else min(len(frame) - 2, 3 + frame[2])
    body, crc = frame[:body_len], frame[body_len : body_len + 2]
    if len(crc) < 2 or crc16(body) != int.from_bytes(crc, "little"):
        raise BadCrc(f"CRC {crc.hex()} does not match {crc16(body):04x}")
    if len(frame) != body_len + 2:
        raise MalformedFrame(f"{len(frame) - body_len - 2} extra bytes after the CRC")
    if frame[0] != slave:
        raise WrongAddress(f"reply from slave {frame[0]}, asked {slave}")
    if frame[1] == function | 0x80:
        raise ExceptionResponse(frame[2], f"Modbus exception {frame[2]:#04x}")
    if frame[1] != function:
        raise MalformedFrame(f"function {frame[1]:#04x}, asked {function:#04x}")
    if frame[2] != 2 * count:
        raise MalformedFrame(f"{frame[2]} data bytes, asked {2 * count}")
    return list(struct.unpack(f">{count}H", frame[3 : 3 + 2 * count]))
