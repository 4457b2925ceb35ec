"""The error tree of the serial codecs. ``code`` is a stable snake_case name for counters."""

from __future__ import annotations


class CodecError(Exception):
    """A reply that cannot be used."""

    code = "codec_error"


class ShortFrame(CodecError):
    """Fewer bytes than the frame needs (a cut-off reply, or silence after a partial one)."""

    code = "short_frame"


class BadCrc(CodecError):
    """Modbus RTU: the CRC-16 does not match."""

    code = "bad_crc"


class BadChecksum(CodecError):
    """DL/T 645, CJ/T 188, lock board: the 8-bit sum does not match."""

    code = "bad_checksum"


class WrongAddress(CodecError):
    """A valid frame from (or for) another device than the one asked."""

    code = "wrong_address"


class ExceptionResponse(CodecError):
    """The device answered but refused: a Modbus exception or a DL/T 645 abnormal reply."""

    code = "exception_response"

    def __init__(self, exception_code: int, detail: str = "") -> None:
        super().__init__(detail or f"exception code {exception_code:#04x}")
        self.exception_code = exception_code


class MalformedFrame(CodecError):
    """Framing is wrong: start/end bytes, function, length, DI, BCD digits."""

    code = "malformed"


CHECKSUM_ERRORS = (BadCrc, BadChecksum)
"""Errors counted as line errors (CRC/checksum) per device."""
