"""Serial field-bus codecs: Modbus RTU meter maps, DL/T 645-2007, the CU16 lock board.

Pure: bytes in, values out, no I/O. Every decoder raises nothing but a
:class:`~devices.serial.errors.CodecError` subclass.
"""

from __future__ import annotations

from devices.serial.errors import (
    BadChecksum,
    BadCrc,
    CodecError,
    ExceptionResponse,
    MalformedFrame,
    ShortFrame,
    WrongAddress,
)

__all__ = [
    "BadChecksum",
    "BadCrc",
    "CodecError",
    "ExceptionResponse",
    "MalformedFrame",
    "ShortFrame",
    "WrongAddress",
]
