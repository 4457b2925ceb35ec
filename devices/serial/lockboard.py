"""The CU16-style lock board: ``02 ADDR CMD [DATA] 03 SUM``, SUM the low byte of the sum.

Addressing (not publicly documented for multi-board buses; chosen here): ADDR = board << 4 |
lock index, so board 0 matches the published single-board frames (lock 1 -> ``00``). A status
query goes to ``board << 4`` and the 9-byte reply carries the whole board's hook bitmaps.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.serial.errors import BadChecksum, MalformedFrame, ShortFrame, WrongAddress

STX = 0x02
ETX = 0x03
STATUS = 0x30
UNLOCK = 0x31
STATUS_ALL = 0x32
REPLY = 0x35
LOCKS = 16
STATUS_LEN = 9


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def build(addr: int, cmd: int, data: bytes = b"") -> bytes:
    body = bytes((STX, addr, cmd)) + data + bytes((ETX,))
    return body + bytes((checksum(body),))


def _addr(board: int, lock: int = 1) -> int:
    if not 0 <= board <= 0x0F or not 1 <= lock <= LOCKS:
        raise ValueError(f"board {board} / lock {lock} out of range")
    return (board << 4) | (lock - 1)


def status_request(board: int) -> bytes:
    return build(_addr(board), STATUS)


def unlock_request(board: int, lock: int) -> bytes:
    """Open ``lock`` (1..16) on ``board``."""
    return build(_addr(board, lock), UNLOCK)


@dataclass(frozen=True, slots=True)
class BoardStatus:
    locked: tuple[bool, ...]
    """Per lock 1..16: True when the hook is closed (the door is shut and latched)."""
    occupied: tuple[bool, ...]
    """Per lock 1..16: the infrared sensor sees an object (False when not fitted)."""

    @property
    def open_locks(self) -> tuple[int, ...]:
        return tuple(i + 1 for i, closed in enumerate(self.locked) if not closed)


def _bits(lo: int, hi: int) -> tuple[bool, ...]:
    word = lo | hi << 8
    return tuple(bool(word >> i & 1) for i in range(LOCKS))


def encode_status(board: int, locked: tuple[bool, ...], occupied: tuple[bool, ...]) -> bytes:
    """The board's status reply (for tests and simulators)."""
    h = sum(1 << i for i, b in enumerate(locked) if b)
    ir = sum(1 << i for i, b in enumerate(occupied) if b)
    return build(_addr(board), REPLY, bytes((h & 0xFF, h >> 8, ir & 0xFF, ir >> 8)))


def reply_length(buf: bytes) -> int | None:
    return STATUS_LEN if buf else None


def decode_status(frame: bytes, board: int) -> BoardStatus:
    """A 9-byte status reply from ``board``."""
    if len(frame) < STATUS_LEN:
        raise ShortFrame(f"{len(frame)} bytes of {STATUS_LEN}")
    if len(frame) > STATUS_LEN:
        raise MalformedFrame(f"{len(frame) - STATUS_LEN} extra bytes")
    if frame[0] != STX or frame[7] != ETX:
        raise MalformedFrame("no STX/ETX")
    if checksum(frame[:8]) != frame[8]:
        raise BadChecksum(f"SUM {frame[8]:02x}, computed {checksum(frame[:8]):02x}")
    if frame[2] != REPLY:
        raise MalformedFrame(f"command {frame[2]:#04x} is not a status reply")
    if frame[1] >> 4 != board:
        raise WrongAddress(f"reply from board {frame[1] >> 4}, asked {board}")
    return BoardStatus(_bits(frame[3], frame[4]), _bits(frame[5], frame[6]))
