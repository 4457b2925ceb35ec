"""One serial port on the event loop: pyserial opens and configures it (non-blocking), the loop
watches its file descriptor, and :meth:`SerialLink.transact` writes a request and collects the
reply until the codec says it is complete or the timeout passes.

Errors: :class:`PortUnavailable` (cannot open, or the port vanished: an unplugged adapter) and
:class:`ReplyTimeout` (carrying whatever partial bytes arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import serial

LengthFn = Callable[[bytes], int | None]


class LinkError(Exception):
    pass


class PortUnavailable(LinkError):
    """The port cannot be opened or went away."""


class ReplyTimeout(LinkError):
    def __init__(self, partial: bytes) -> None:
        super().__init__(f"no complete reply ({len(partial)} bytes)")
        self.partial = partial


class SerialLink:
    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        opener: Callable[..., Any] = serial.Serial,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self._opener = opener
        self._serial: Any = None
        self._fd = -1
        self._buf = bytearray()
        self._event = asyncio.Event()
        self._lost: BaseException | None = None
        self.stray_bytes = 0
        """Bytes that arrived when no reply was expected (noise, late replies)."""

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._lost is None

    def open(self) -> None:
        self.close()
        try:
            ser = self._opener(
                self.port,
                baudrate=self.baudrate,
                parity=self.parity,
                stopbits=self.stopbits,
                bytesize=8,
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortUnavailable(f"{self.port}: {exc}") from None
        self._serial = ser
        self._fd = ser.fileno()
        self._lost = None
        self._buf.clear()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        self._serial = None
        self._fd = -1

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            data, self._lost = b"", exc
        if not data:
            self._lost = self._lost or PortUnavailable(f"{self.port}: end of file")
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        else:
            self._buf += data
        self._event.set()

    def _check(self) -> None:
        if self._serial is None:
            raise PortUnavailable(f"{self.port}: not open")
        if self._lost is not None:
            raise PortUnavailable(f"{self.port}: {self._lost}")

    def discard(self) -> int:
        """Drop whatever sits in the input buffer; returns how many bytes."""
        n = len(self._buf)
        self.stray_bytes += n
        self._buf.clear()
        return n

    def write(self, data: bytes) -> None:
        self._check()
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            self._lost = exc
            raise PortUnavailable(f"{self.port}: {exc}") from None

    async def transact(self, request: bytes, length: LengthFn, wait_s: float) -> bytes:
        """Send ``request``; return the reply once ``length(reply)`` bytes are in."""
        self.discard()
        self.write(request)
        return await self.read_reply(length, wait_s)

    async def read_reply(self, length: LengthFn, wait_s: float) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            self._check()
            need = length(bytes(self._buf))
            if need is not None and len(self._buf) >= need:
                reply = bytes(self._buf[:need])
                del self._buf[:need]
                return reply
            left = deadline - loop.time()
            if left <= 0:
                partial = bytes(self._buf)
                self._buf.clear()
                raise ReplyTimeout(partial)
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)
